//! Which rules can never match: every connection they admit is admitted by an earlier rule,
//! or by several earlier rules together (`0.0.0.0/0` and `::/0` together cover `samenet`,
//! `samehost`, `all` and host names; `hostssl` and `hostnossl` together cover `host`). Only
//! sure answers count: role membership, DNS and regular expressions never cover anything
//! but themselves.
//!
//! The search follows PostgreSQL's first match (`check_hba` in src/backend/libpq/hba.c).
//! Earlier rules are indexed by type, database, user and network, so a 100,000-line file is
//! not compared pairwise.
//!
//! Over 600 lines: the index, its interner and hash, and the tests of each way rules cover
//! one another belong together.

use crate::addr;
use crate::check_hba::{regex_match, Tri};
use crate::coverage::{covers_address, may_intersect, Union};
use crate::parse_line::{
    meaning, meaning_ref, Address, ConnType, Field, Meaning, MeaningRef, Rule,
};
use std::cell::{Ref, RefCell};
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A fast hash for the index's keys: short strings and integers from the user's own file.
#[derive(Default, Clone, Copy)]
struct Fx(u64);

impl Fx {
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(b));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.add(i.into());
    }
    fn write_u32(&mut self, i: u32) {
        self.add(i.into());
    }
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    fn finish(&self) -> u64 {
        // splitmix64's finalizer: the table indexes by the low bits, which the multiply
        // alone leaves as they were in the input ("db1", "db2", … would all collide).
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<Fx>>;

const KEYWORD: u8 = 0;
const MEMBER: u8 = 1;
const REGEX: u8 = 2;
const NAME: u8 = 3;
/// The ids of `all` and `replication` (interned first).
const ALL: u32 = 0;
const REPLICATION: u32 = 1;

/// Database and user entries by meaning, one id each: rules compare ids, not strings. The
/// texts are borrowed from the rules' tokens (no copy per entry of a 100,000-line file).
struct Interner<'r> {
    by_kind: [FxMap<&'r str, u32>; 4],
    entries: Vec<(u8, &'r str)>,
}

impl<'r> Interner<'r> {
    fn new() -> Interner<'r> {
        // The ids ALL and REPLICATION, which `intern` returns without a lookup.
        Interner {
            by_kind: Default::default(),
            entries: vec![(KEYWORD, "all"), (KEYWORD, "replication")],
        }
    }

    fn intern(&mut self, m: MeaningRef<'r>) -> u32 {
        let (k, s) = match m {
            // Most entries of a large file are `all`: its id is known without a hash.
            MeaningRef::Keyword("all") => return ALL,
            MeaningRef::Keyword("replication") => return REPLICATION,
            MeaningRef::Keyword(s) => (KEYWORD, s),
            MeaningRef::Member(s) => (MEMBER, s),
            MeaningRef::Regex(s) => (REGEX, s),
            MeaningRef::Name(s) => (NAME, s),
        };
        let next = self.entries.len() as u32;
        let id = *self.by_kind[k as usize].entry(s).or_insert(next);
        if id == next {
            self.entries.push((k, s));
        }
        id
    }

    fn kind(&self, id: u32) -> u8 {
        self.entries[id as usize].0
    }

    fn text(&self, id: u32) -> &str {
        self.entries[id as usize].1
    }
}

/// The meanings of a rule's database and user entries, interned, borrowed from [`Sems`].
#[derive(Clone, Copy)]
struct Sem<'s> {
    dbs: &'s [u32],
    users: &'s [u32],
}

impl<'s> Sem<'s> {
    fn dbs(&self) -> &'s [u32] {
        self.dbs
    }

    fn users(&self) -> &'s [u32] {
        self.users
    }
}

/// The [`Sem`] of each rule, their ids in one array: no allocation a rule of a
/// 100,000-line file.
#[derive(Default)]
struct Sems {
    ids: Vec<u32>,
    /// Per rule, where its database entries end and where its user entries end in `ids`
    /// (they start where the previous rule's end).
    ends: Vec<(u32, u32)>,
}

impl Sems {
    /// Interns the entries of the next rule.
    fn push<'r>(&mut self, r: &'r Rule, version: u32, it: &mut Interner<'r>) {
        let dbs = r.databases.iter();
        self.ids
            .extend(dbs.map(|t| it.intern(meaning_ref(t, Field::Database, version))));
        let db_end = self.ids.len() as u32;
        let users = r.users.iter();
        self.ids
            .extend(users.map(|t| it.intern(meaning_ref(t, Field::User, version))));
        self.ends.push((db_end, self.ids.len() as u32));
    }

    fn get(&self, i: usize) -> Sem<'_> {
        let start = if i == 0 {
            0
        } else {
            self.ends[i - 1].1 as usize
        };
        let (db_end, end) = (self.ends[i].0 as usize, self.ends[i].1 as usize);
        Sem {
            dbs: &self.ids[start..db_end],
            users: &self.ids[db_end..end],
        }
    }
}

/// Whether entry `b` of one rule is admitted by entries `a_ids` of rule `a`.
fn covers_token(a: &Rule, a_ids: &[u32], b: u32, it: &Interner) -> bool {
    // `all` does not match physical replication connections; only `replication` does.
    if b != REPLICATION && a_ids.contains(&ALL) {
        return true;
    }
    if a_ids.contains(&b) {
        return true;
    }
    it.kind(b) == NAME
        && a_ids.iter().any(|&x| {
            it.kind(x) == REGEX && matches!(regex_match(a, it.text(x), it.text(b)), Tri::Yes)
        })
}

/// Connection kinds as bits: TCP plain, SSL and GSS-encrypted as in
/// [`ConnType::tcp_kinds`], and a Unix socket as its own bit.
const LOCAL_KIND: u8 = 8;

fn kinds(t: ConnType) -> u8 {
    if t == ConnType::Local {
        LOCAL_KIND
    } else {
        t.tcp_kinds()
    }
}

const TYPES: [ConnType; 6] = [
    ConnType::Local,
    ConnType::Host,
    ConnType::HostSsl,
    ConnType::HostNoSsl,
    ConnType::HostGssEnc,
    ConnType::HostNoGssEnc,
];

/// Whether every connection `b` admits is admitted by `a` (so `b` after `a` never matches).
pub fn covers(a: &Rule, b: &Rule, version: u32) -> bool {
    let mut it = Interner::new();
    let mut sems = Sems::default();
    sems.push(a, version, &mut it);
    sems.push(b, version, &mut it);
    covers_sem(a, &sems.get(0), b, &sems.get(1), &it)
}

fn covers_sem(a: &Rule, asem: &Sem, b: &Rule, bsem: &Sem, it: &Interner) -> bool {
    kinds(b.conn) & !kinds(a.conn) == 0
        && covers_address(&a.address, &b.address)
        && bsem
            .dbs()
            .iter()
            .all(|&t| covers_token(a, asem.dbs(), t, it))
        && bsem
            .users()
            .iter()
            .all(|&t| covers_token(a, asem.users(), t, it))
}

/// Whether `a` takes part in covering `b`: for some kind, database and user of `b`, `a`
/// admits them all, and their addresses may meet.
fn contributes(a: &Rule, asem: &Sem, b: &Rule, bsem: &Sem, it: &Interner) -> bool {
    kinds(b.conn) & kinds(a.conn) != 0
        && may_intersect(&a.address, &b.address)
        && bsem
            .dbs()
            .iter()
            .any(|&t| covers_token(a, asem.dbs(), t, it))
        && bsem
            .users()
            .iter()
            .any(|&t| covers_token(a, asem.users(), t, it))
}

/// What identifies a rule for `add`/`remove`: type, database and user sets, address.
pub fn identity(r: &Rule, version: u32) -> String {
    let set = |toks: &[crate::lex::Token], f: Field| {
        let mut v: Vec<Meaning> = toks.iter().map(|t| meaning(t, f, version)).collect();
        v.sort();
        v.dedup();
        format!("{v:?}")
    };
    format!(
        "{}|{}|{}|{}",
        r.conn.name(),
        set(&r.databases, Field::Database),
        set(&r.users, Field::User),
        r.address.as_ref().map(Address::key).unwrap_or_default()
    )
}

/// The options in a comparable form: the last value of each name wins, as in the server.
pub fn options_key(r: &Rule) -> Vec<(String, String)> {
    let mut m: Vec<(String, String)> = Vec::new();
    for (k, v) in r.options() {
        m.retain(|(k2, _)| k2 != k);
        m.push((k.clone(), v.clone()));
    }
    m.sort();
    m
}

/// Identity plus method and options: two rules with equal keys behave the same.
pub fn full_key(r: &Rule, version: u32) -> String {
    format!("{}|{}|{:?}", identity(r, version), r.method, options_key(r))
}

/// Why a rule can never match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shadow {
    /// This earlier rule alone admits every connection it would.
    By(usize),
    /// These earlier rules together do (each admits some of its connections), in file order.
    Together(Vec<usize>),
}

impl Shadow {
    /// The rules involved, in file order.
    pub fn rules(&self) -> &[usize] {
        match self {
            Shadow::By(j) => std::slice::from_ref(j),
            Shadow::Together(v) => v,
        }
    }
}

/// Earlier rules of one (type, database entry, user entry): for single covers, by address;
/// for covers together, their addresses' union.
#[derive(Default)]
struct Bucket {
    /// Non-network addresses (all, names, samehost, samenet), odd masks, local rules.
    other: Vec<usize>,
    /// Prefix lengths present among its networks, per width.
    lens: Vec<(u32, u32)>,
    /// Every rule of the bucket, in file order.
    members: Vec<usize>,
    /// The union of the first .1 members' addresses: made and brought up to date only when a
    /// query needs it, so most buckets never build one (boxed, it costs them one word).
    union: RefCell<Option<Box<(Union, usize)>>>,
}

/// Lists of rule indexes kept as chains in one arena (most lists hold one rule).
struct Chains {
    /// key → (first link, last link)
    heads: FxMap<(usize, u32, u32, u128), (usize, usize)>,
    /// (rule, next link or usize::MAX)
    links: Vec<(usize, usize)>,
}

impl Chains {
    /// Room for about `n` rules (one network each, as most rules have): made once, not
    /// regrown and copied along the way.
    fn with_capacity(n: usize) -> Chains {
        Chains {
            heads: FxMap::with_capacity_and_hasher(n, Default::default()),
            links: Vec::with_capacity(n),
        }
    }

    fn push(&mut self, key: (usize, u32, u32, u128), rule: usize) {
        let n = self.links.len();
        self.links.push((rule, usize::MAX));
        // One hash of the key, found or not (most networks of a large file are new).
        match self.heads.entry(key) {
            Entry::Occupied(mut e) => {
                let tail = &mut e.get_mut().1;
                self.links[*tail].1 = n;
                *tail = n;
            }
            Entry::Vacant(e) => {
                e.insert((n, n));
            }
        }
    }
    fn contains(&self, key: &(usize, u32, u32, u128)) -> bool {
        self.heads.contains_key(key)
    }

    fn iter(&self, key: &(usize, u32, u32, u128)) -> impl Iterator<Item = usize> + '_ {
        let mut at = self.heads.get(key).map_or(usize::MAX, |h| h.0);
        std::iter::from_fn(move || {
            if at == usize::MAX {
                return None;
            }
            let (rule, next) = self.links[at];
            at = next;
            Some(rule)
        })
    }
}

fn mask_of(w: u32, q: u32) -> u128 {
    if q == 0 {
        0
    } else {
        (u128::MAX >> (128 - w)) & !((1u128 << (w - q)) - 1)
    }
}

/// Bucket ids by connection type (`ConnType as usize`), [`NO_BUCKET`] where there is none.
type Row = [u32; 6];
const NO_BUCKET: u32 = u32::MAX;

/// The rules indexed so far, in file order.
struct Index<'r> {
    rules: &'r [Rule],
    sems: Sems,
    it: Interner<'r>,
    /// Per (database key, user key), the bucket of each connection type: one hash lookup
    /// finds them all.
    bucket_ids: FxMap<(u32, u32), Row>,
    buckets: Vec<Bucket>,
    nets: Chains,
    /// Rules with too many entries to index by every (database, user) pair.
    wide: Vec<usize>,
    /// Every indexed address, whatever its rule's type and entries, brought up to date only
    /// when asked (see [`Index::together`]), and how many rules it holds.
    everything: RefCell<(Union, usize)>,
    /// How many rules are indexed (rules[..len]).
    len: usize,
}

/// The types whose rules admit some connection of kind bits `k`.
fn types_admitting(k: u8) -> impl Iterator<Item = ConnType> {
    TYPES.into_iter().filter(move |t| kinds(*t) & k != 0)
}

/// The types whose rules admit every connection of kind bits `k`.
fn types_covering(k: u8) -> impl Iterator<Item = ConnType> {
    TYPES.into_iter().filter(move |t| k & !kinds(*t) == 0)
}

impl<'r> Index<'r> {
    fn new(rules: &'r [Rule], version: u32) -> Index<'r> {
        let mut it = Interner::new();
        let entries = rules
            .iter()
            .map(|r| r.databases.len() + r.users.len())
            .sum();
        let mut sems = Sems {
            ids: Vec::with_capacity(entries),
            ends: Vec::with_capacity(rules.len()),
        };
        for r in rules {
            sems.push(r, version, &mut it);
        }
        Index {
            rules,
            sems,
            it,
            bucket_ids: FxMap::default(),
            // At most a few buckets a rule; the unused tail of the reservation is never
            // touched, and the vector is never copied as it grows.
            buckets: Vec::with_capacity(rules.len()),
            nets: Chains::with_capacity(rules.len()),
            wide: Vec::new(),
            everything: RefCell::default(),
            len: 0,
        }
    }

    /// Keys to look up for an entry: `all` covers it (unless it is `replication`), and so
    /// does the same entry.
    fn keys(id: u32) -> ([u32; 2], usize) {
        match id {
            ALL => ([ALL, 0], 1),
            REPLICATION => ([REPLICATION, 0], 1),
            _ => ([ALL, id], 2),
        }
    }

    /// The buckets of (`dk`, `uk`) whose type is one of `types`.
    fn buckets_of(
        &self,
        dk: u32,
        uk: u32,
        types: impl Iterator<Item = ConnType>,
    ) -> impl Iterator<Item = usize> {
        let row = self.bucket_ids.get(&(dk, uk)).copied();
        types.filter_map(move |t| {
            let bid = row?[t as usize];
            (bid != NO_BUCKET).then_some(bid as usize)
        })
    }

    /// The first indexed rule that alone covers `b`.
    fn single(&self, b: &Rule, bsem: &Sem) -> Option<usize> {
        let (d0, dn) = bsem.dbs().first().map_or(([0; 2], 0), |&m| Self::keys(m));
        let (u0, un) = bsem.users().first().map_or(([0; 2], 0), |&m| Self::keys(m));
        let mut best: Option<usize> = None;
        let consider = |list: &mut dyn Iterator<Item = usize>, best: &mut Option<usize>| {
            // Lists are in file order: the first cover in each is that list's answer.
            for j in list {
                if best.is_some_and(|b| j >= b) {
                    break;
                }
                if covers_sem(&self.rules[j], &self.sems.get(j), b, bsem, &self.it) {
                    *best = Some(j);
                    break;
                }
            }
        };
        consider(&mut self.wide.iter().copied(), &mut best);
        for dk in &d0[..dn] {
            for uk in &u0[..un] {
                for bid in self.buckets_of(*dk, *uk, types_covering(kinds(b.conn))) {
                    let bucket = &self.buckets[bid];
                    consider(&mut bucket.other.iter().copied(), &mut best);
                    if let Some(Address::Ip { addr: a, mask }) = &b.address {
                        let (bits, w) = addr::bits(a);
                        let (m, _) = addr::bits(mask);
                        for &(lw, q) in &bucket.lens {
                            // A shorter (or equal) prefix the rule's own mask includes.
                            if lw == w && mask_of(w, q) & !m == 0 {
                                let key = (bid, w, q, bits & mask_of(w, q));
                                consider(&mut self.nets.iter(&key), &mut best);
                            }
                        }
                    }
                }
            }
        }
        best
    }

    /// Whether the indexed rules together cover `b`: for every connection kind, database
    /// entry and user entry of `b`, the rules admitting all three admit all its addresses.
    fn together(&self, b: &Rule, bsem: &Sem) -> bool {
        // A rule with many (database, user) pairs outside every indexed address cannot be
        // covered: that spares a search per pair. For the others the union of every address
        // costs more (a tree insert a rule) than it saves, so it is not kept up to date.
        if bsem.dbs().len() * bsem.users().len() > 4 && !self.within_everything(b) {
            return false;
        }
        let bk = kinds(b.conn);
        let mut bids: Vec<usize> = Vec::new();
        let mut guards: Vec<Ref<(Union, usize)>> = Vec::new();
        for bit in [1u8, 2, 4, LOCAL_KIND].into_iter().filter(|k| bk & k != 0) {
            for &d in bsem.dbs() {
                let (dks, dn) = Self::keys(d);
                for &u in bsem.users() {
                    let (uks, un) = Self::keys(u);
                    bids.clear();
                    for dk in &dks[..dn] {
                        for uk in &uks[..un] {
                            bids.extend(self.buckets_of(*dk, *uk, types_admitting(bit)));
                        }
                    }
                    if !self.may_reach(&bids, &b.address) {
                        return false;
                    }
                    guards.clear();
                    guards.extend(bids.iter().map(|&bid| self.union_of(bid)));
                    let unions: Vec<&Union> = guards.iter().map(|g| &g.0).collect();
                    if !Union::covers(&unions, &b.address) {
                        return false;
                    }
                }
            }
        }
        true
    }

    /// Whether the rules of buckets `bids` may admit the first address of `b`'s network:
    /// asked of the network index before their union, which then is not built for the many
    /// rules whose first address no earlier rule admits (a bucket of 60,000 networks would
    /// cost a tree insert each). Only a sure "no" is false: a bucket with another kind of
    /// address (`all`, an odd mask, …) is left to the union.
    fn may_reach(&self, bids: &[usize], b: &Option<Address>) -> bool {
        let Some(Address::Ip { addr: a, mask }) = b else {
            return true;
        };
        let (bits, w) = addr::bits(a);
        let lo = bits & addr::bits(mask).0;
        bids.iter().any(|&bid| {
            let bucket = &self.buckets[bid];
            !bucket.other.is_empty()
                || bucket
                    .lens
                    .iter()
                    .any(|&(lw, q)| lw == w && self.nets.contains(&(bid, w, q, lo & mask_of(w, q))))
        })
    }

    /// Whether `b`'s addresses are among those of every indexed rule.
    fn within_everything(&self, b: &Rule) -> bool {
        let mut e = self.everything.borrow_mut();
        let (union, n) = &mut *e;
        for r in &self.rules[*n..self.len] {
            union.add(&r.address);
        }
        *n = self.len;
        Union::covers(&[union], &b.address)
    }

    /// The union of a bucket's addresses, brought up to date.
    fn union_of(&self, bid: usize) -> Ref<'_, (Union, usize)> {
        let bucket = &self.buckets[bid];
        {
            let mut u = bucket.union.borrow_mut();
            let u = u.get_or_insert_with(Box::default);
            for &m in &bucket.members[u.1..] {
                u.0.add(&self.rules[m].address);
            }
            u.1 = bucket.members.len();
        }
        Ref::map(bucket.union.borrow(), |u| {
            &**u.as_ref().expect("made above")
        })
    }

    /// Why `b` can never match after the indexed rules, if so.
    fn shadow(&self, b: &Rule, bsem: &Sem) -> Option<Shadow> {
        if let Some(j) = self.single(b, bsem) {
            return Some(Shadow::By(j));
        }
        if !self.together(b, bsem) {
            return None;
        }
        let by: Vec<usize> = (0..self.len)
            .filter(|&j| contributes(&self.rules[j], &self.sems.get(j), b, bsem, &self.it))
            .collect();
        let by = self.minimal(by, b, bsem);
        match by.as_slice() {
            [] => None,
            [j] => Some(Shadow::By(*j)),
            _ => Some(Shadow::Together(by)),
        }
    }

    /// Whether the rules `subset` together cover `b`, compared one by one (no index).
    fn together_by(&self, subset: &[usize], b: &Rule, bsem: &Sem) -> bool {
        let bk = kinds(b.conn);
        for bit in [1u8, 2, 4, LOCAL_KIND].into_iter().filter(|k| bk & k != 0) {
            for &d in bsem.dbs() {
                for &u in bsem.users() {
                    let mut union = Union::default();
                    for &j in subset {
                        let (a, s) = (&self.rules[j], self.sems.get(j));
                        if kinds(a.conn) & bit != 0
                            && covers_token(a, s.dbs(), d, &self.it)
                            && covers_token(a, s.users(), u, &self.it)
                        {
                            union.add(&a.address);
                        }
                    }
                    if !Union::covers(&[&union], &b.address) {
                        return false;
                    }
                }
            }
        }
        true
    }

    /// Drops rules the others can do without, later ones first (so the earliest rules that
    /// cover `b` are named). Long lists are kept whole: naming them is enough.
    fn minimal(&self, mut by: Vec<usize>, b: &Rule, bsem: &Sem) -> Vec<usize> {
        if by.len() > 32 || !self.together_by(&by, b, bsem) {
            return by;
        }
        for k in (0..by.len()).rev() {
            let mut rest = by.clone();
            rest.remove(k);
            if self.together_by(&rest, b, bsem) {
                by = rest;
            }
        }
        by
    }

    /// Adds the next rule.
    fn push(&mut self) {
        let i = self.len;
        self.len += 1;
        let r = &self.rules[i];

        // Index rule i under each (database, user) pair it has; `all` stands for the rest.
        // More than 16 pairs make it a wide rule, checked against every later one.
        let sem = self.sems.get(i);
        let (mut dkeys, mut dn) = ([0u32; 17], 0usize);
        let put = |keys: &mut [u32; 17], n: &mut usize, v: u32| {
            if *n < keys.len() {
                keys[*n] = v;
            }
            *n += 1;
        };
        if sem.dbs().contains(&ALL) {
            put(&mut dkeys, &mut dn, ALL);
        }
        for &m in sem.dbs().iter().filter(|&&m| m != ALL) {
            put(&mut dkeys, &mut dn, m);
        }
        let (mut ukeys, mut un) = ([0u32; 17], 0usize);
        if sem.users().contains(&ALL) {
            put(&mut ukeys, &mut un, ALL);
        } else {
            for &m in sem.users() {
                put(&mut ukeys, &mut un, m);
            }
        }
        if dn * un > 16 {
            self.wide.push(i);
            return;
        }
        for dk in &dkeys[..dn] {
            for uk in &ukeys[..un] {
                let row = self.bucket_ids.entry((*dk, *uk)).or_insert([NO_BUCKET; 6]);
                let slot = &mut row[r.conn as usize];
                if *slot == NO_BUCKET {
                    *slot = self.buckets.len() as u32;
                    self.buckets.push(Bucket::default());
                }
                let bid = *slot as usize;
                let b = &mut self.buckets[bid];
                b.members.push(i);
                match &r.address {
                    Some(Address::Ip { addr: a, mask }) => match addr::prefix_len(mask) {
                        Some(p) => {
                            let (bits, w) = addr::bits(a);
                            let (m, _) = addr::bits(mask);
                            self.nets.push((bid, w, p, bits & m), i);
                            if !b.lens.contains(&(w, p)) {
                                b.lens.push((w, p));
                            }
                        }
                        None => b.other.push(i),
                    },
                    _ => b.other.push(i),
                }
            }
        }
    }
}

/// For each rule, why it can never match after the rules before it (None: it can match).
pub fn shadowed_by(rules: &[Rule], version: u32) -> Vec<Option<Shadow>> {
    let mut index = Index::new(rules, version);
    let mut out = Vec::with_capacity(rules.len());
    for (i, r) in rules.iter().enumerate() {
        out.push(index.shadow(r, &index.sems.get(i)));
        index.push();
    }
    out
}

/// An index of all of `rules`, and `b`'s entries in its terms.
fn index_all<'r>(rules: &'r [Rule], b: &'r Rule, version: u32) -> (Index<'r>, Sems) {
    let mut index = Index::new(rules, version);
    for _ in rules {
        index.push();
    }
    let mut bsem = Sems::default();
    bsem.push(b, version, &mut index.it);
    (index, bsem)
}

/// Why `b` could never match if it came after all of `rules` (None: it could).
pub fn shadow_of(rules: &[Rule], b: &Rule, version: u32) -> Option<Shadow> {
    let (index, bsem) = index_all(rules, b, version);
    index.shadow(b, &bsem.get(0))
}

/// Where `b` must go so that it can match, and the shadow it would have after the last rule:
/// just before the first rule (up to the last of the shadow) that admits some of its
/// connections and that `b` does not itself cover, so a more specific rule stays first.
/// None: after the last rule is fine, or no place helps (every such rule is more specific
/// than `b`).
pub fn place_before(rules: &[Rule], b: &Rule, version: u32) -> Option<(usize, Shadow)> {
    let (index, bsems) = index_all(rules, b, version);
    let bsem = bsems.get(0);
    let shadow = index.shadow(b, &bsem)?;
    let last = *shadow.rules().last()?;
    let it = &index.it;
    (0..=last)
        .find(|&j| {
            let (a, asem) = (&rules[j], &index.sems.get(j));
            contributes(a, asem, b, &bsem, it) && !covers_sem(b, &bsem, a, asem, it)
        })
        .map(|j| (j, shadow))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::rules;

    #[test]
    fn shadowing_and_duplicates() {
        let r = rules(
            "host all all 0.0.0.0/0 md5\nhost app bob 10.0.0.0/8 scram-sha-256\nhost replication all 10.0.0.0/8 md5\nlocal all all peer\nlocal all all peer\nhostssl all all 10.1.0.0/16 md5\nhost all +g 10.0.0.0/8 md5\n",
            16,
        );
        let s = shadowed_by(&r, 16);
        let by = Some(Shadow::By(0));
        assert_eq!(
            s,
            vec![
                None,
                by.clone(),
                None,
                None,
                Some(Shadow::By(3)),
                by.clone(),
                by
            ]
        );
        let r = rules(
            "host all all 10.0.0.0/16 md5\nhost all all 10.0.0.0/8 md5\n",
            16,
        );
        assert_eq!(shadowed_by(&r, 16), vec![None, None]);
    }

    #[test]
    fn several_rules_shadow_together() {
        // The example: the IPv4 and IPv6 catch-alls together cover samenet.
        let r = rules(
            "local all all trust\nhost all all 0.0.0.0/0 scram-sha-256\nhost all all ::/0 scram-sha-256\nhost all all samenet trust\nhost all all samehost trust\nhost all all db.example.com md5\nhost all all all md5\nhost all all 10.0.0.0/8 md5\n",
            15,
        );
        let s = shadowed_by(&r, 15);
        assert_eq!(s[..3], [None, None, None]);
        for i in [3, 5, 6] {
            assert_eq!(s[i], Some(Shadow::Together(vec![1, 2])), "rule {i}");
        }
        // samenet alone covers samehost.
        assert_eq!(s[4], Some(Shadow::By(3)));
        assert_eq!(s[7], Some(Shadow::By(1)));
        // IPv4 alone does not cover them.
        let r = rules(
            "host all all 0.0.0.0/0 md5\nhost all all samenet trust\nhost all all all trust\n",
            15,
        );
        assert_eq!(shadowed_by(&r, 15), vec![None, None, None]);
        // Two halves cover the whole; hostssl and hostnossl together cover host.
        let r = rules(
            "host all all 10.0.0.0/9 md5\nhost all all 10.128.0.0/9 md5\nhost all all 10.0.0.0/8 trust\nhostssl all all 192.168.0.0/16 cert\nhostnossl all all 192.168.0.0/16 reject\nhost all all 192.168.1.0/24 trust\n",
            15,
        );
        let s = shadowed_by(&r, 15);
        assert_eq!(s[2], Some(Shadow::Together(vec![0, 1])));
        assert_eq!(s[5], Some(Shadow::Together(vec![3, 4])));
        // samenet covers samehost; names and membership cover nothing but themselves.
        let r = rules(
            "host all all samenet md5\nhost all all samehost md5\nhost all +g all md5\nhost all bob all md5\nhost all all .example.com md5\nhost all all db.example.com md5\n",
            15,
        );
        let s = shadowed_by(&r, 15);
        assert_eq!(
            s,
            vec![
                None,
                Some(Shadow::By(0)),
                None,
                None,
                None,
                Some(Shadow::By(4))
            ]
        );
        // all does not cover replication.
        let r = rules(
            "host all all 0.0.0.0/0 md5\nhost all all ::/0 md5\nhost replication all all md5\n",
            15,
        );
        assert_eq!(shadowed_by(&r, 15)[2], None);
        // Each database of a list may be covered by other rules.
        let r = rules(
            "host db1 all 0.0.0.0/0 md5\nhost db1 all ::/0 md5\nhost db2 all all md5\nhost db1,db2 all samenet trust\nhost db1,db3 all samenet trust\n",
            15,
        );
        let s = shadowed_by(&r, 15);
        assert_eq!(s[3], Some(Shadow::Together(vec![0, 1, 2])));
        assert_eq!(s[4], None);
    }

    #[test]
    fn the_network_index_answers_before_the_union() {
        // No earlier network holds 10.0.0.0: not covered, whatever the rest.
        let r = rules(
            "host all all 10.0.0.128/25 md5\nhost all all 10.0.0.0/24 md5\n",
            15,
        );
        assert_eq!(shadowed_by(&r, 15), vec![None, None]);
        // The first address in one bucket, the rest in another: covered together.
        let r = rules(
            "host all all 10.0.0.0/25 md5\nhost all bob 10.0.0.128/25 md5\nhost all bob 10.0.0.0/24 md5\nhost all bob ::/0 md5\nhost all bob ::1/128 md5\n",
            15,
        );
        let s = shadowed_by(&r, 15);
        assert_eq!(s[2], Some(Shadow::Together(vec![0, 1])));
        assert_eq!(s[4], Some(Shadow::By(3)));
        // An odd mask is left to the union, where it covers only alone.
        let r = rules(
            "host all all 10.0.0.0 255.0.255.128 md5\nhost all all 10.0.0.128/25 md5\nhost all all 10.0.0.0/24 md5\nhost all all 10.0.0.0/25 md5\n",
            15,
        );
        assert_eq!(
            shadowed_by(&r, 15),
            vec![None, None, None, Some(Shadow::By(0))]
        );
    }

    #[test]
    fn rules_with_many_pairs_are_covered_together_or_not_at_all() {
        // Six (database, user) pairs: the union of every address is asked first.
        let r = rules(
            "host all all 0.0.0.0/0 md5\nhost all all ::/0 md5\nhost a,b,c x,y all trust\nhost a,b,c x,y 10.0.0.0/8 trust\n",
            15,
        );
        let s = shadowed_by(&r, 15);
        assert_eq!(s[2], Some(Shadow::Together(vec![0, 1])));
        assert_eq!(s[3], Some(Shadow::By(0)));
        let r = rules(
            "host all all 10.0.0.0/8 md5\nhost a,b,c x,y 172.16.0.0/12 trust\nhost all all 192.168.0.0/17 md5\nhost all all 192.168.128.0/17 md5\nhost a,b,c x,y 192.168.0.0/16 trust\n",
            15,
        );
        let s = shadowed_by(&r, 15);
        assert_eq!(s[1], None);
        assert_eq!(s[4], Some(Shadow::Together(vec![2, 3])));
    }

    #[test]
    fn a_new_rule_goes_before_the_first_rule_of_its_shadow_it_does_not_cover() {
        let r = rules(
            "local all all trust\nhost all bob 127.0.0.1/32 reject\nhost all all 0.0.0.0/0 scram-sha-256\nhost all all ::/0 scram-sha-256\n",
            15,
        );
        let b = &rules("host all all samenet trust\n", 15)[0];
        assert_eq!(place_before(&r, b, 15).map(|p| p.0), Some(2));
        // A more specific earlier rule stays first.
        let r = rules(
            "host all all 10.0.0.0/16 md5\nhost all all 10.0.0.0/8 md5\n",
            15,
        );
        let b = &rules("host all all 10.0.0.0/12 trust\n", 15)[0];
        assert_eq!(place_before(&r, b, 15).map(|p| p.0), Some(1));
        let b = &rules("host all all 192.168.0.0/16 trust\n", 15)[0];
        assert_eq!(place_before(&r, b, 15).map(|p| p.0), None);
    }
}
