//! The reference Prometheus parser (Python's prometheus_client) as a second reader of a
//! tool's metrics, so a textfile the node_exporter would refuse fails a test.

use crate::Unavailable;
use std::io::Write;
use std::process::{Command, Stdio};

/// How many samples prometheus_client reads in `text`.
///
/// # Errors
/// `Unavailable` when no python3 has prometheus_client (Debian's package installs it for the
/// system python, which may not be the first on PATH).
///
/// # Panics
/// When prometheus_client refuses the text.
pub fn prometheus_client_samples(text: &str) -> Result<usize, Unavailable> {
    let python = ["/usr/bin/python3", "python3"]
        .into_iter()
        .find(|py| {
            Command::new(py)
                .args(["-c", "import prometheus_client"])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .ok_or_else(|| {
            Unavailable(
                "python3 with prometheus_client (apt-get install python3-prometheus-client)".into(),
            )
        })?;
    let script = "import sys\n\
from prometheus_client.parser import text_string_to_metric_families\n\
print(sum(len(f.samples) for f in text_string_to_metric_families(sys.stdin.read())))\n";
    let mut child = Command::new(python)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client refused it: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().parse().unwrap())
}
