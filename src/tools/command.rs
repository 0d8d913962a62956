//! Running a tool: argument vectors only, stderr's tail kept for errors, and the whole process
//! group killed if the caller stops waiting (shutdown, a failed sibling step).
use std::{ffi::OsStr, path::Path, process::Stdio};

use nix::{sys::signal::Signal, unistd::Pid};
use tokio::process::Command;
use tracing::debug;

/// How much of a failing command's stderr is kept.
pub const STDERR_TAIL: usize = 4096;

/// A command that failed, or could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ToolError {
    pub message: String,
    pub exit_code: Option<i32>,
    /// The last [`STDERR_TAIL`] bytes of its stderr.
    pub stderr_tail: String,
}

impl ToolError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            exit_code: None,
            stderr_tail: String::new(),
        }
    }
}

/// Kills the command's process group unless disarmed: a dropped (cancelled) run leaves no
/// process behind, grandchildren included.
struct GroupGuard(Option<Pid>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.0 {
            debug!(
                pgid = pgid.as_raw(),
                "killing the process group of a cancelled command"
            );
            let _ = nix::sys::signal::killpg(pgid, Signal::SIGKILL);
        }
    }
}

/// Runs `program` with `args`, succeeding only on exit code 0, and returns its stdout (stderr
/// is only kept for errors). `install_hint` says what to install when the program is missing.
pub async fn run<I, S>(program: &Path, args: I, install_hint: &str) -> Result<String, ToolError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let mut command = Command::new(program);
    command
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let shown = shown(program, &args);
    let child = command.spawn().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            ToolError::new(format!("{} not found: {install_hint}", program.display()))
        } else {
            ToolError::new(format!("cannot run {}: {e}", program.display()))
        }
    })?;
    let mut guard = GroupGuard(
        child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .map(Pid::from_raw),
    );
    let output = child
        .wait_with_output()
        .await
        .map_err(|e| ToolError::new(format!("waiting for {}: {e}", program.display())))?;
    guard.0 = None;
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let tail = tail(&stderr, STDERR_TAIL);
    let reason = last_error_line(&tail)
        .map(|line| format!(": {line}"))
        .unwrap_or_default();
    let how = match output.status.code() {
        Some(_) => "failed",
        None => "was killed by a signal",
    };
    Err(ToolError {
        message: format!("{shown} {how}{reason}"),
        exit_code: output.status.code(),
        stderr_tail: tail,
    })
}

/// The command as a person would type it, for messages; build-arg values (which may be
/// secrets) are left out, since messages reach logs and Status.
fn shown(program: &Path, args: &[std::ffi::OsString]) -> String {
    let mut words = vec![program.to_string_lossy().into_owned()];
    let mut secret_next = false;
    for arg in args {
        let arg = arg.to_string_lossy();
        words.push(match arg.split_once('=') {
            Some((key, _)) if secret_next => format!("{key}=…"),
            _ => arg.into_owned(),
        });
        secret_next = words.last().is_some_and(|w| w == "--build-arg");
    }
    words.join(" ")
}

/// The last `max` bytes of `text`, cut at a character boundary.
pub fn tail(text: &str, max: usize) -> String {
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_string()
}

/// The most telling line of a failing tool's stderr: its last `ERROR:` line, else its last line.
fn last_error_line(stderr: &str) -> Option<&str> {
    let mut lines = stderr.lines().map(str::trim).filter(|l| !l.is_empty());
    lines
        .clone()
        .rfind(|l| l.starts_with("ERROR") || l.starts_with("error"))
        .or_else(|| lines.next_back())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn success_returns_stdout() {
        let out = run(Path::new("echo"), ["a b", "c"], "").await.unwrap();
        assert_eq!(
            out, "a b c\n",
            "arguments are passed as they are, not through a shell"
        );
    }

    #[tokio::test]
    async fn failure_keeps_exit_code_and_error_line() {
        let script = "echo noise >&2; echo 'ERROR: it broke' >&2; echo more >&2; exit 3";
        let e = run(Path::new("sh"), ["-c", script], "").await.unwrap_err();
        assert_eq!(e.exit_code, Some(3));
        assert!(
            e.message.ends_with("failed: ERROR: it broke"),
            "{}",
            e.message
        );
        assert!(
            e.message.starts_with("sh -c echo noise"),
            "as typed: {}",
            e.message
        );
        assert!(e.stderr_tail.ends_with("more\n"));
    }

    #[tokio::test]
    async fn a_missing_program_says_what_to_install() {
        let e = run(
            Path::new("/nonexistent/kind"),
            ["version"],
            "install kind v0.32",
        )
        .await
        .unwrap_err();
        assert_eq!(e.message, "/nonexistent/kind not found: install kind v0.32");
    }

    #[test]
    fn build_arg_values_stay_out_of_messages() {
        let args: Vec<std::ffi::OsString> =
            ["build", "--build-arg", "TOKEN=s3cret", "--tag", "a=b"]
                .iter()
                .map(Into::into)
                .collect();
        assert_eq!(
            shown(Path::new("docker"), &args),
            "docker build --build-arg TOKEN=… --tag a=b"
        );
    }

    #[test]
    fn tail_keeps_the_end_on_a_char_boundary() {
        let text = format!("{}é{}", "a".repeat(10), "b".repeat(5));
        assert_eq!(tail(&text, 6), "bbbbb");
        assert_eq!(tail(&text, 7), "ébbbbb");
        assert_eq!(tail("short", 4096), "short");
    }

    #[tokio::test]
    async fn dropping_a_run_kills_its_whole_process_group() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("grandchild.pid");
        // The shell starts a grandchild and records its pid, then both sleep.
        let script = format!("sleep 30 & echo $! > {}; wait", pid_file.display());
        let running = tokio::spawn(async move { run(Path::new("sh"), ["-c", &script], "").await });
        while !pid_file.exists()
            || std::fs::read_to_string(&pid_file)
                .unwrap()
                .trim()
                .is_empty()
        {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let grandchild: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        running.abort();
        let _ = running.await;
        let mut alive = true;
        for _ in 0..200 {
            // Signal 0 probes; ESRCH means gone (a zombie reaped by init also goes).
            alive = nix::sys::signal::kill(Pid::from_raw(grandchild), None).is_ok()
                && !is_zombie(grandchild);
            if !alive {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(
            !alive,
            "the grandchild {grandchild} outlived the cancelled command"
        );
    }

    fn is_zombie(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
            .unwrap_or(true)
    }
}
