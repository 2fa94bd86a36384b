//! What repl-lag's tests share: running it, waiting for a pair, client processes, and strict
//! readers of its Prometheus and Nagios output.

use pgdr_lag::report::{PrimaryReport, Problem, ServerReport, StandbyReport};
use pgdr_pgformat::Lsn;
use pgdr_testkit::{tool, Cluster, ToolOutput};
use std::time::{Duration, Instant};

pub const WAIT: Duration = Duration::from_secs(60);

pub fn lag<I: IntoIterator<Item = S>, S: AsRef<std::ffi::OsStr>>(args: I) -> ToolOutput {
    tool("repl-lag").args(args).run()
}

/// Runs repl-lag on one server and returns (exit code, output).
pub fn check(conninfo: &str, extra: &[&str]) -> (i32, ToolOutput) {
    let out = lag(["-d", conninfo].iter().chain(extra));
    let code = out.code.expect("exit code");
    assert!(
        out.stderr.is_empty(),
        "a report run writes nothing on stderr: {}",
        out.stderr
    );
    (code, out)
}

/// Runs repl-lag on a primary: (exit code, its report).
pub fn check_primary(conninfo: &str, extra: &[&str]) -> (i32, PrimaryReport) {
    let (code, out) = check(conninfo, extra);
    (code, out.document())
}

/// Runs repl-lag on a standby: (exit code, its report).
pub fn check_standby(conninfo: &str, extra: &[&str]) -> (i32, StandbyReport) {
    let (code, out) = check(conninfo, extra);
    (code, out.document())
}

/// The one server's report, whichever role it has.
pub fn report(out: &ToolOutput) -> ServerReport {
    match out.json()["role"].as_str() {
        Some("primary") => ServerReport::Primary(Box::new(out.document())),
        Some("standby") => ServerReport::Standby(Box::new(out.document())),
        other => panic!("no role {other:?}: {}", out.stdout),
    }
}

pub fn lsn(text: &str) -> Lsn {
    text.parse().unwrap_or_else(|e| panic!("not an LSN: {e}"))
}

pub fn messages(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("{}: {}", p.severity.as_str(), p.message))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Repeats `f` until it returns Some, for up to `WAIT`.
pub fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub fn wait_streaming(p: &Cluster, s: &Cluster) {
    p.wait_for(
        "select count(*) = 1 from pg_stat_replication where state = 'streaming' \
         and replay_lsn = pg_current_wal_lsn()",
        WAIT,
    );
    s.wait_for(
        "select status = 'streaming' from pg_stat_wal_receiver",
        WAIT,
    );
}

/// Waits until the standby has replayed everything the primary has written so far.
pub fn wait_replayed(p: &Cluster, s: &Cluster) {
    let cur = p.query_value("select pg_current_wal_lsn()").unwrap();
    s.wait_for(&format!("select pg_last_wal_replay_lsn() >= '{cur}'"), WAIT);
}

/// A client process (pg_receivewal, pg_recvlogical, pg_basebackup) stopped when the test
/// ends, also on a panic.
pub struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts one of the server's client programs as the cluster's owner.
pub fn spawn(c: &Cluster, program: &str, args: &[&str]) -> Running {
    let child = c
        .cmd(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    Running(child)
}

/// Parses the exposition with the prometheus-parse crate, checking that no line was
/// silently skipped, and with Python's prometheus_client when it is installed.
pub fn parse_prometheus(text: &str) -> prometheus_parse::Scrape {
    let sample_lines = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .count();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    assert_eq!(
        scrape.samples.len(),
        sample_lines,
        "some sample lines were not understood:\n{text}"
    );
    for s in &scrape.samples {
        assert!(
            scrape.docs.contains_key(&s.metric),
            "no HELP for {}",
            s.metric
        );
        let value = match s.value {
            prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Counter(v) => v,
            ref other => panic!("{}: untyped or unexpected {other:?}", s.metric),
        };
        assert!(value.is_finite(), "{} = {value}", s.metric);
        let unitless = [
            "_up",
            "_status",
            "_problems",
            "_in_recovery",
            "_standbys_streaming",
            "_streaming",
            "_active",
            "_wal_status",
            "_failing",
            "_paused",
            "_total",
            "_segments",
        ];
        assert!(
            s.metric.ends_with("_bytes")
                || s.metric.ends_with("_seconds")
                || unitless.iter().any(|u| s.metric.ends_with(u)),
            "metric without a unit: {}",
            s.metric
        );
    }
    match pgdr_testkit::prometheus_client_samples(text) {
        Ok(n) => assert_eq!(
            n, sample_lines,
            "prometheus_client read another sample count"
        ),
        Err(u) if pgdr_testkit::require_all() => {
            panic!("{u} (PGDR_REQUIRE_ALL=1: every facility must be here)")
        }
        Err(u) => eprintln!("\n*** SKIPPED part of parse_prometheus: {u} ***\n"),
    }
    scrape
}

/// One perfdata item: label, value, unit, warn, crit, min, max (as written).
#[derive(Debug, Clone, PartialEq)]
pub struct PerfItem {
    pub label: String,
    pub value: String,
    pub uom: String,
    pub warn: String,
    pub crit: String,
    pub min: String,
    pub max: String,
}

impl PerfItem {
    pub fn value(&self) -> f64 {
        self.value.parse().unwrap()
    }
}

/// Reads a plugin's stdout as the Monitoring Plugins Development Guidelines define it, with a
/// strict regex (one line, `STATUS - summary`, then ` | ` and space-separated
/// `label=value[UOM];[warn];[crit];[min];[max]` items, ranges as the guidelines write them),
/// checks that the exit code is the status's, and reads it again with pynag's plugin-output
/// parser (Debian python3-pynag), which must agree item for item. Returns (status, summary,
/// perfdata).
pub fn parse_nagios(out: &ToolOutput) -> (String, String, Vec<PerfItem>) {
    const NUM: &str = r"-?[0-9]+(?:\.[0-9]+)?";
    let range = format!(r"@?(?:(?:~|{NUM}):)?{NUM}|@?(?:~|{NUM}):");
    let item = regex::Regex::new(&format!(
        r"^([^'= ][^= ]*|'(?:[^']|'')+')=({NUM})(us|ms|s|%|B|KB|MB|GB|TB|c)?(?:;({range})?(?:;({range})?(?:;({NUM})?(?:;({NUM})?)?)?)?)?$"
    ))
    .unwrap();
    let line =
        regex::Regex::new(r"^(OK|WARNING|CRITICAL|UNKNOWN) - ([^|\n]+?)(?: \| ([^\n]+))?\n$")
            .unwrap();
    let caps = line
        .captures(&out.stdout)
        .unwrap_or_else(|| panic!("not one plugin line: {:?}", out.stdout));
    let status = caps[1].to_string();
    let code = ["OK", "WARNING", "CRITICAL", "UNKNOWN"]
        .iter()
        .position(|s| *s == status)
        .unwrap() as i32;
    assert_eq!(
        out.code,
        Some(code),
        "exit code vs {status}: {}",
        out.stdout
    );
    assert!(out.stderr.is_empty(), "{}", out.stderr);
    let mut items = Vec::new();
    for token in caps.get(3).map_or("", |m| m.as_str()).split(' ') {
        if token.is_empty() {
            continue;
        }
        let c = item
            .captures(token)
            .unwrap_or_else(|| panic!("not a perfdata item: {token:?} in {}", out.stdout));
        let g = |i: usize| c.get(i).map_or(String::new(), |m| m.as_str().to_string());
        items.push(PerfItem {
            label: g(1),
            value: g(2),
            uom: g(3),
            warn: g(4),
            crit: g(5),
            min: g(6),
            max: g(7),
        });
    }
    let mut labels: Vec<_> = items.iter().map(|i| i.label.clone()).collect();
    labels.sort();
    labels.dedup();
    assert_eq!(labels.len(), items.len(), "labels repeat: {}", out.stdout);
    pynag_agrees(&out.stdout, &items);
    (status, caps[2].to_string(), items)
}

/// pynag's PluginOutput reads the same line: no long output, every metric valid, the same
/// items.
pub fn pynag_agrees(stdout: &str, items: &[PerfItem]) {
    let python = "/usr/bin/python3";
    let present = std::process::Command::new(python)
        .args(["-c", "import pynag.Utils"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        let why = "python3-pynag is not installed (apt-get install python3-pynag)";
        assert!(!pgdr_testkit::require_all(), "{why} (PGDR_REQUIRE_ALL=1)");
        eprintln!("\n*** SKIPPED part of parse_nagios: {why} ***\n");
        return;
    }
    let script = "import sys, json\n\
from pynag.Utils import PluginOutput\n\
o = PluginOutput(sys.stdin.read())\n\
p = o.parsed_perfdata\n\
print(json.dumps({'long': o.long_output, 'invalid': p.invalid_metrics + [str(m) for m in p.metrics if not m.is_valid()], \
'metrics': [[m.label, m.value, m.uom, m.warn, m.crit, m.min, m.max] for m in p.metrics]}))\n";
    let mut child = std::process::Command::new(python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdout.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["long"], "", "a plugin prints one line: {stdout}");
    assert_eq!(v["invalid"], serde_json::json!([]), "pynag: {stdout}");
    let theirs: Vec<Vec<String>> = serde_json::from_value(v["metrics"].clone()).unwrap();
    let ours: Vec<Vec<String>> = items
        .iter()
        .map(|i| {
            vec![
                i.label.clone(),
                i.value.clone(),
                i.uom.clone(),
                i.warn.clone(),
                i.crit.clone(),
                i.min.clone(),
                i.max.clone(),
            ]
        })
        .collect();
    assert_eq!(theirs, ours, "pynag reads other items: {stdout}");
}

pub fn perf<'a>(items: &'a [PerfItem], label: &str) -> &'a PerfItem {
    items
        .iter()
        .find(|i| i.label == label)
        .unwrap_or_else(|| panic!("no perfdata {label}: {items:?}"))
}

pub fn sample<'a>(
    scrape: &'a prometheus_parse::Scrape,
    metric: &str,
    labels: &[(&str, &str)],
) -> Option<&'a prometheus_parse::Sample> {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
}

pub fn gauge(s: &prometheus_parse::Sample) -> f64 {
    match s.value {
        prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Counter(v) => v,
        _ => panic!("not a gauge"),
    }
}

/// `repl-lag … --format prometheus > F.tmp && mv F.tmp F` through a real shell, as README's
/// cron line runs it; returns whether the shell succeeded.
pub fn textfile_pipeline(servers: &[&str], extra: &[&str], file: &std::path::Path) -> bool {
    let mut args = vec![];
    for s in servers {
        args.extend(["-d".to_string(), s.to_string()]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    std::process::Command::new("sh")
        .arg("-c")
        .arg(r#"f="$1"; shift; "$0" "$@" --format prometheus > "$f.tmp" && mv "$f.tmp" "$f""#)
        .arg(pgdr_testkit::bin_dir().join("repl-lag"))
        .arg(file)
        .args(&args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", "/nonexistent")
        .env("PGPASSFILE", "/dev/null")
        .status()
        .unwrap()
        .success()
}
