//! Who holds a lease, by default: the CI job when the environment names one, else
//! `user@host:pid`.

/// The holder this process would give: its CI job's identity if it runs in one of the
/// known CI systems, else `user@host:pid`.
pub fn default_holder() -> String {
    holder_from(&|key| std::env::var(key).ok().filter(|v| !v.is_empty()))
}

pub(crate) fn holder_from(env: &dyn Fn(&str) -> Option<String>) -> String {
    let get = |key: &str| env(key).unwrap_or_default();
    if env("GITHUB_ACTIONS").is_some() {
        return format!(
            "github:{}/actions/runs/{}#{}",
            get("GITHUB_REPOSITORY"),
            get("GITHUB_RUN_ID"),
            get("GITHUB_JOB")
        );
    }
    if env("GITLAB_CI").is_some() {
        return format!(
            "gitlab:{}/-/jobs/{}",
            get("CI_PROJECT_PATH"),
            get("CI_JOB_ID")
        );
    }
    if env("BUILDKITE").is_some() {
        return format!(
            "buildkite:{}#{}/{}",
            get("BUILDKITE_PIPELINE_SLUG"),
            get("BUILDKITE_BUILD_NUMBER"),
            get("BUILDKITE_JOB_ID")
        );
    }
    if env("JENKINS_URL").is_some() {
        return format!("jenkins:{}#{}", get("JOB_NAME"), get("BUILD_NUMBER"));
    }
    if env("CIRCLECI").is_some() {
        return format!(
            "circleci:{}#{}",
            get("CIRCLE_PROJECT_REPONAME"),
            get("CIRCLE_BUILD_NUM")
        );
    }
    let user = env("USER")
        .or_else(|| env("LOGNAME"))
        .unwrap_or_else(|| "unknown".into());
    let host = env("HOSTNAME")
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("{user}@{host}:{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn holder(vars: &[(&str, &str)]) -> String {
        let env: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        holder_from(&move |key| env.get(key).cloned())
    }

    #[test]
    fn ci_jobs_name_themselves() {
        assert_eq!(
            holder(&[
                ("GITHUB_ACTIONS", "true"),
                ("GITHUB_REPOSITORY", "acme/we"),
                ("GITHUB_RUN_ID", "42"),
                ("GITHUB_JOB", "e2e")
            ]),
            "github:acme/we/actions/runs/42#e2e"
        );
        assert_eq!(
            holder(&[
                ("GITLAB_CI", "true"),
                ("CI_PROJECT_PATH", "acme/we"),
                ("CI_JOB_ID", "7")
            ]),
            "gitlab:acme/we/-/jobs/7"
        );
        assert_eq!(
            holder(&[
                ("JENKINS_URL", "http://ci"),
                ("JOB_NAME", "we-e2e"),
                ("BUILD_NUMBER", "9")
            ]),
            "jenkins:we-e2e#9"
        );
        assert_eq!(
            holder(&[
                ("BUILDKITE", "true"),
                ("BUILDKITE_PIPELINE_SLUG", "we"),
                ("BUILDKITE_BUILD_NUMBER", "3"),
                ("BUILDKITE_JOB_ID", "j")
            ]),
            "buildkite:we#3/j"
        );
    }

    #[test]
    fn elsewhere_it_is_user_at_host_and_pid() {
        let h = holder(&[("USER", "ci"), ("HOSTNAME", "runner-1")]);
        assert_eq!(h, format!("ci@runner-1:{}", std::process::id()));
    }
}
