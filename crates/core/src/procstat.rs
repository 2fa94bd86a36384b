//! `/proc/PID/stat` (proc(5)): `pid (comm) state ppid pgrp session … starttime …`. The
//! command name may hold spaces and parentheses, so fields are counted after its last `)`.

/// The fields after the command name: index 0 is field 3 (state), 1 the parent, 2 the
/// process group, 3 the session, 19 the start time (clock ticks after boot). None when the
/// text has no `)`.
pub fn fields(stat: &str) -> Option<std::str::SplitWhitespace<'_>> {
    Some(stat[stat.rfind(')')? + 1..].split_whitespace())
}

/// Field `i` of [`fields`], parsed.
pub fn field<T: std::str::FromStr>(stat: &str, i: usize) -> Option<T> {
    fields(stat)?.nth(i)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_count_after_the_last_parenthesis() {
        let odd = "9 (a) b) (c) R 7 9 9";
        assert_eq!(field::<i32>(odd, 1), Some(7));
        assert_eq!(fields("garbage").map(|f| f.count()), None);
        assert_eq!(field::<u64>("1 (x) S 0", 19), None);
    }
}
