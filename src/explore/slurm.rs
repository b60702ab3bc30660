//! `qnnc explore SWEEP --slurm N`: the sweep as a Slurm job array of N shards, each running
//! `qnnc explore --shard i/N` into `DIR/shards/i`, plus a collect job that runs
//! `qnnc explore --collect` into `DIR` once every shard has succeeded
//! (`--dependency=afterok`). All shards write trained points into one cache folder
//! (`DIR/cache` on a shared file system), so submitting the same command again after a failure
//! recomputes only the points that are missing. `--wait` follows the jobs with `squeue` (and
//! `sacct` once they have left the queue) until the collect job ends.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use clap::Args;

use super::sweep::{Cache, Sweep};
use crate::error::{Error, Result};

/// The Slurm options of `qnnc explore`.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Cluster (Slurm)")]
pub struct SlurmArgs {
    /// Submit the sweep to Slurm as a job array of N shards and a job that collects them
    #[arg(long, value_name = "N", conflicts_with_all = ["shard", "collect", "emit_best"])]
    pub slurm: Option<usize>,
    /// With --slurm: wait until the collect job ends and print the report's summary
    #[arg(long, requires = "slurm")]
    pub wait: bool,
    /// With --slurm: the partition to run in (default: the cluster's default)
    #[arg(long, requires = "slurm")]
    pub partition: Option<String>,
    /// With --slurm: time limit of each job, as sbatch takes it
    #[arg(
        long,
        value_name = "TIME",
        default_value = "02:00:00",
        requires = "slurm"
    )]
    pub time: String,
    /// With --slurm: CPUs of each shard (training uses all it is given)
    #[arg(long, value_name = "N", default_value_t = 2, requires = "slurm")]
    pub cpus_per_task: usize,
    /// Folder of trained points (default: OUTPUT/cache); shards of one sweep may share one
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    /// The command the report names (set by --slurm for its collect job)
    #[arg(long, hide = true, requires = "collect")]
    pub report_command: Option<String>,
}

/// The flags of this group that only concern submission, with whether each takes a value:
/// the shards and the report do not see them.
const SUBMISSION_FLAGS: [(&str, bool); 5] = [
    ("--slurm", true),
    ("--wait", false),
    ("--partition", true),
    ("--time", true),
    ("--cpus-per-task", true),
];

/// States in which a job has ended without success (`squeue` and `sacct` names).
const FAILED: [&str; 9] = [
    "FAILED",
    "CANCELLED",
    "TIMEOUT",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "BOOT_FAIL",
    "DEADLINE",
    "PREEMPTED",
    "REVOKED",
];

const POLL: Duration = Duration::from_secs(2);
/// Polls in a row in which nobody knows the collect job before `--wait` gives up on it: a
/// minute, longer than a busy controller keeps squeue waiting.
const UNSEEN_POLLS: usize = 30;

/// Checks the Slurm flags before anything is read or written: at least one shard, and
/// `sbatch` on the PATH.
pub fn check(args: &SlurmArgs) -> Result<()> {
    let Some(shards) = args.slurm else {
        return Ok(());
    };
    if shards == 0 {
        return Err(Error::usage("--slurm", "give at least 1 shard"));
    }
    if args.cpus_per_task == 0 {
        return Err(Error::usage("--cpus-per-task", "give at least 1 CPU"));
    }
    if find_program("sbatch").is_none() {
        return Err(Error::usage(
            "--slurm",
            "sbatch is not on the PATH: run on a Slurm login node (or install slurm-client)",
        ));
    }
    Ok(())
}

/// The first executable file called `name` on the PATH.
fn find_program(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|file| {
            file.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// `argv` (without the program) less the flags named, each with its value when it takes one
/// (`--flag value` or `--flag=value`; `-oVALUE` for a short one).
fn without_flags(argv: &[String], flags: &[(&str, bool)]) -> Vec<String> {
    let mut kept = Vec::with_capacity(argv.len());
    let mut words = argv.iter();
    while let Some(word) = words.next() {
        if word == "--" {
            kept.push(word.clone());
            kept.extend(words.by_ref().cloned());
            break;
        }
        let matched = flags.iter().find(|(flag, takes_value)| {
            word == flag
                || (*takes_value
                    && if flag.starts_with("--") {
                        word.starts_with(&format!("{flag}="))
                    } else {
                        word.starts_with(flag)
                    })
        });
        match matched {
            Some((flag, true)) if word == flag => {
                words.next();
            }
            Some(_) => {}
            None => kept.push(word.clone()),
        }
    }
    kept
}

fn quote(word: &str) -> Result<String> {
    shlex::try_quote(word)
        .map(|q| q.into_owned())
        .map_err(|e| Error::usage("--slurm", format!("cannot pass '{word}' to a job: {e}")))
}

fn quote_all<'a>(words: impl IntoIterator<Item = &'a str>) -> Result<String> {
    Ok(words
        .into_iter()
        .map(quote)
        .collect::<Result<Vec<_>>>()?
        .join(" "))
}

fn io_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Output {
        file: path.display().to_string(),
        message: e.to_string(),
    }
}

fn write_script(path: &Path, text: &str) -> Result<()> {
    crate::output::write_atomic(path, text.as_bytes()).map_err(|e| io_error(path, e))
}

/// An sbatch file-name pattern for `dir/name`: a `%` of the folder is not a pattern.
fn log_pattern(dir: &Path, name: &str) -> String {
    format!("{}/{name}", dir.display().to_string().replace('%', "%%"))
}

/// Runs a Slurm command; its standard output, or its first line of error.
fn run_tool(program: &str, args: &[String]) -> std::result::Result<String, String> {
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program} did not run: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let first = stderr
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no message");
        Err(format!(
            "{program} failed ({}): {}",
            output.status,
            first.trim()
        ))
    }
}

/// The job id that `sbatch --parsable` printed (`id` or `id;cluster`).
fn parse_job_id(printed: &str) -> Option<String> {
    let id = printed.trim().split(';').next()?.trim();
    (!id.is_empty() && id.chars().all(|c| c.is_ascii_digit())).then(|| id.to_string())
}

fn sbatch(args: &[String], what: &str) -> Result<String> {
    let printed = run_tool("sbatch", args)
        .map_err(|e| Error::usage("--slurm", format!("submitting {what}: {e}")))?;
    parse_job_id(&printed).ok_or_else(|| {
        Error::usage(
            "--slurm",
            format!(
                "submitting {what}: sbatch printed no job id ('{}')",
                printed.trim()
            ),
        )
    })
}

/// Submits the shards and the collect job, prints their ids, and with `--wait` follows them
/// until the collect job ends. `out` is the output folder as given.
pub fn submit(args: &SlurmArgs, sweep: &Sweep, out: &Path, cache: &Cache) -> Result<()> {
    let shards = args.slurm.expect("submit is called with --slurm");
    let exe = std::env::current_exe()
        .map_err(|e| Error::usage("--slurm", format!("cannot find the qnnc binary: {e}")))?;
    let exe = exe.display().to_string();
    let argv: Vec<String> = std::env::args().skip(1).collect();
    // What the user typed, less where it runs: the command that computes the same results on
    // one machine, named in the report.
    let command = without_flags(&argv, &SUBMISSION_FLAGS);
    let report_command = format!("qnnc {}", command.join(" "));
    let mut shard_argv = without_flags(
        &command,
        &[("-o", true), ("--output", true), ("--cache", true)],
    );
    if shard_argv.iter().any(|w| w == "--") {
        return Err(Error::usage(
            "--slurm",
            "give the sweep file before any '--' so the shards can be given their flags",
        ));
    }
    let slurm_dir = out.join("slurm");
    let shards_dir = out.join("shards");
    let out_existed = out.exists();
    std::fs::create_dir_all(&slurm_dir).map_err(|e| io_error(&slurm_dir, e))?;

    shard_argv.extend(["--cache".to_string(), cache.dir.display().to_string()]);
    let shard_script = slurm_dir.join("shard.sh");
    write_script(
        &shard_script,
        &format!(
            "#!/bin/sh\n\
             # Shard $SLURM_ARRAY_TASK_ID of {shards} of the sweep `{name}`, as submitted by\n\
             # `{report_command} --slurm {shards}`.\n\
             i=\"${{SLURM_ARRAY_TASK_ID:?run as a task of a Slurm job array}}\"\n\
             exec {exe} {flags} --shard \"$i/{shards}\" -o {shards_dir}/\"$i\"\n",
            name = sweep.name,
            exe = quote(&exe)?,
            flags = quote_all(shard_argv.iter().map(String::as_str))?,
            shards_dir = quote(&shards_dir.display().to_string())?,
        ),
    )?;
    let shard_dirs: Vec<String> = (0..shards)
        .map(|i| shards_dir.join(i.to_string()).display().to_string())
        .collect();
    let collect_script = slurm_dir.join("collect.sh");
    let out_text = out.display().to_string();
    write_script(
        &collect_script,
        &format!(
            "#!/bin/sh\n\
             # Collects the {shards} shards of the sweep `{name}` once all have succeeded.\n\
             exec {exe} explore --collect {dirs} -o {out} --report-command {command}\n",
            name = sweep.name,
            exe = quote(&exe)?,
            dirs = quote_all(shard_dirs.iter().map(String::as_str))?,
            out = quote(&out_text)?,
            command = quote(&report_command)?,
        ),
    )?;

    let mut common = vec![format!("--time={}", args.time)];
    if let Some(partition) = &args.partition {
        common.push(format!("--partition={partition}"));
    }
    let mut array_args = vec![
        "--parsable".to_string(),
        format!("--job-name=qnnc-{}", sweep.name),
        format!("--array=0-{}", shards - 1),
        format!("--cpus-per-task={}", args.cpus_per_task),
        format!("--output={}", log_pattern(&slurm_dir, "shard-%A_%a.log")),
    ];
    array_args.extend(common.iter().cloned());
    array_args.push(shard_script.display().to_string());
    let array = match sbatch(&array_args, "the shards") {
        Ok(id) => id,
        Err(e) => {
            // Nothing was submitted: nothing stays written. A folder goes only when empty.
            let _ = std::fs::remove_file(&shard_script);
            let _ = std::fs::remove_file(&collect_script);
            let _ = std::fs::remove_dir(&slurm_dir);
            if !out_existed {
                let _ = std::fs::remove_dir(out);
            }
            return Err(e);
        }
    };
    cache.claim(sweep)?;

    let mut collect_args = vec![
        "--parsable".to_string(),
        format!("--job-name=qnnc-{}-collect", sweep.name),
        format!("--dependency=afterok:{array}"),
        // A failed shard ends the collect job instead of leaving it pending for ever.
        "--kill-on-invalid-dep=yes".to_string(),
        "--cpus-per-task=1".to_string(),
        format!("--output={}", log_pattern(&slurm_dir, "collect-%j.log")),
    ];
    collect_args.extend(common);
    collect_args.push(collect_script.display().to_string());
    let collect = match sbatch(&collect_args, "the collect job") {
        Ok(id) => id,
        Err(e) => {
            // Shards with nothing to collect them would only use the cluster.
            let _ = run_tool("scancel", std::slice::from_ref(&array));
            return Err(e);
        }
    };
    outln!(
        "submitted {shards} shards of sweep {} as job array {array}, and job {collect} that collects them into {out_text}",
        sweep.name
    )?;
    outln!(
        "logs in {}; follow with: squeue --jobs={array},{collect}",
        slurm_dir.display()
    )?;
    if args.wait {
        wait(&array, shards, &collect, &slurm_dir)?;
    }
    Ok(())
}

/// The state of each job of `ids` and of its tasks, by id (`12_3` for a task of an array): from
/// `squeue` while jobs are in the queue (finished jobs stay there for a few minutes), else from
/// `sacct` for those of `needed` that squeue no longer lists.
fn job_states(ids: &[&str], needed: &[String]) -> BTreeMap<String, String> {
    let list = ids.join(",");
    let mut states = BTreeMap::new();
    if let Ok(text) = run_tool(
        "squeue",
        &[
            "--noheader".into(),
            "--array".into(),
            "--states=all".into(),
            format!("--jobs={list}"),
            "--format=%i|%T".into(),
        ],
    ) {
        states.extend(parse_states(&text));
    }
    if needed.iter().any(|id| !states.contains_key(id)) && find_program("sacct").is_some() {
        if let Ok(text) = run_tool(
            "sacct",
            &[
                "--noheader".into(),
                "--parsable2".into(),
                "--allocations".into(),
                format!("--jobs={list}"),
                "--format=JobID,State".into(),
            ],
        ) {
            for (id, state) in parse_states(&text) {
                states.entry(id).or_insert(state);
            }
        }
    }
    states
}

/// `id|STATE` lines; `CANCELLED by 0` is `CANCELLED`.
fn parse_states(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| {
            let (id, state) = line.trim().split_once('|')?;
            let state = state.split_whitespace().next()?;
            Some((id.trim().to_string(), state.to_string()))
        })
        .collect()
}

fn failed(state: &str) -> bool {
    FAILED.contains(&state)
}

fn finished(state: &str) -> bool {
    state == "COMPLETED" || failed(state)
}

/// Follows the shards and the collect job until the collect job ends. A failed shard is
/// reported once every other shard has ended, so that submitting again at once computes each
/// missing point only once.
fn wait(array: &str, shards: usize, collect: &str, slurm_dir: &Path) -> Result<()> {
    let tasks: Vec<String> = (0..shards).map(|i| format!("{array}_{i}")).collect();
    let mut reported = vec![false; shards];
    let mut unseen_polls = 0;
    loop {
        let needed: Vec<String> = tasks.iter().cloned().chain([collect.to_string()]).collect();
        let states = job_states(&[array, collect], &needed);
        let mut all_ended = true;
        for (i, task) in tasks.iter().enumerate() {
            match states.get(task) {
                Some(state) if finished(state) => {
                    if !reported[i] {
                        reported[i] = true;
                        outln!("shard {i} (job {task}): {state}")?;
                    }
                }
                _ => all_ended = false,
            }
        }
        let failure = tasks
            .iter()
            .enumerate()
            .find(|(_, t)| states.get(*t).is_some_and(|s| failed(s)));
        if let (Some((i, task)), true) = (failure, all_ended) {
            let _ = run_tool("scancel", &[collect.to_string()]);
            return Err(Error::usage(
                "--slurm",
                format!(
                    "shard {i} (job {task}) ended {}; its log: {}; run the same command again to compute what is missing",
                    states[task],
                    slurm_dir.join(format!("shard-{task}.log")).display()
                ),
            ));
        }
        let collect_log = slurm_dir.join(format!("collect-{collect}.log"));
        match states.get(collect).map(String::as_str) {
            Some("COMPLETED") => {
                let log = crate::input::read_text(&collect_log, crate::input::BUILD_FILE)
                    .map_err(|e| io_error(&collect_log, e))?;
                outln!("collect job {collect}: COMPLETED")?;
                for line in log.lines() {
                    outln!("{line}")?;
                }
                return Ok(());
            }
            Some(state) if failed(state) && failure.is_none() => {
                return Err(Error::usage(
                    "--slurm",
                    format!(
                        "collect job {collect} ended {state}; its log: {}",
                        collect_log.display()
                    ),
                ));
            }
            Some(_) => unseen_polls = 0,
            None => {
                // Neither squeue nor sacct knows the job: it left the queue unseen, on a
                // cluster that keeps no accounting.
                unseen_polls += 1;
                if unseen_polls >= UNSEEN_POLLS {
                    return Err(Error::usage(
                        "--slurm",
                        format!(
                            "job {collect} left the queue and sacct has no record of it; see {}",
                            collect_log.display()
                        ),
                    ));
                }
            }
        }
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        text.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn submission_flags_are_dropped_with_their_values() {
        let argv = words(
            "explore s.toml --slurm 3 --wait --partition=short --time 1:00 --cpus-per-task=4 -o run --jobs 2",
        );
        assert_eq!(
            without_flags(&argv, &SUBMISSION_FLAGS),
            words("explore s.toml -o run --jobs 2")
        );
        let outputs = [("-o", true), ("--output", true), ("--cache", true)];
        assert_eq!(
            without_flags(
                &words("explore -orun --quick --output=x --cache c"),
                &outputs
            ),
            words("explore --quick")
        );
        // A flag that merely starts like one of them is kept.
        assert_eq!(
            without_flags(&words("explore --slurmish --waiting"), &SUBMISSION_FLAGS),
            words("explore --slurmish --waiting")
        );
    }

    #[test]
    fn job_ids_and_states_are_read_as_slurm_prints_them() {
        assert_eq!(parse_job_id("1234\n").as_deref(), Some("1234"));
        assert_eq!(parse_job_id("77;cluster\n").as_deref(), Some("77"));
        assert_eq!(parse_job_id("Submitted batch job 5\n"), None);
        let states = parse_states("12_0|COMPLETED\n12_1|CANCELLED by 0\n13|PENDING\nnoise\n");
        assert_eq!(states["12_0"], "COMPLETED");
        assert_eq!(states["12_1"], "CANCELLED");
        assert_eq!(states["13"], "PENDING");
        assert_eq!(states.len(), 3);
        assert!(failed("TIMEOUT") && !failed("RUNNING") && finished("COMPLETED"));
    }

    #[test]
    fn log_patterns_keep_percent_signs_of_folders() {
        assert_eq!(
            log_pattern(Path::new("run%1/slurm"), "shard-%A_%a.log"),
            "run%%1/slurm/shard-%A_%a.log"
        );
    }
}
