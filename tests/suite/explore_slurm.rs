//! `qnnc explore --slurm` against stand-ins for sbatch, squeue and scancel (shell scripts in a
//! temporary folder put first on the PATH): what it submits, that shards and collect give the
//! results of one machine, and its refusals. `make slurm-check` runs it on a real cluster.
//! Needs Fashion-MNIST (`make test` installs it).

use crate::common;
use common::{assert_user_error, ok, qnnc};

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A stand-in for sbatch that runs each job at once (every task of an array in turn, then
/// the collect job if they all succeeded) and records its arguments and each job's end state
/// for the stand-in squeue. `FAKE_FAIL_TASK=i` makes task i fail without running.
const SBATCH: &str = r#"#!/bin/bash
here=$(dirname "$0")
echo "sbatch $*" >> "$here/calls.log"
id=$(cat "$here/next_id" 2>/dev/null || echo 100)
echo $((id + 1)) > "$here/next_id"
array=""; output=""; script=""; dependency=""
for a in "$@"; do
    case "$a" in
        --array=*) array=${a#--array=} ;;
        --output=*) output=${a#--output=} ;;
        --dependency=*) dependency=${a#--dependency=} ;;
        --*) ;;
        *) script=$a ;;
    esac
done
if [ -n "$array" ]; then
    for i in $(seq "${array%-*}" "${array#*-}"); do
        log=$(echo "$output" | sed "s/%A/$id/; s/%a/$i/")
        if [ "$i" = "${FAKE_FAIL_TASK:-}" ]; then
            echo "${id}_$i|FAILED" >> "$here/states"
        elif SLURM_ARRAY_TASK_ID=$i sh "$script" > "$log" 2>&1; then
            echo "${id}_$i|COMPLETED" >> "$here/states"
        else
            echo "${id}_$i|FAILED" >> "$here/states"
        fi
    done
else
    log=$(echo "$output" | sed "s/%j/$id/")
    if grep -q "^${dependency#afterok:}_[0-9]*|FAILED" "$here/states"; then
        echo "$id|CANCELLED by 0" >> "$here/states"
    elif sh "$script" > "$log" 2>&1; then
        echo "$id|COMPLETED" >> "$here/states"
    else
        echo "$id|FAILED" >> "$here/states"
    fi
fi
echo "$id"
"#;

const SQUEUE: &str = "#!/bin/sh\ncat \"$(dirname \"$0\")/states\"\n";
const SCANCEL: &str = "#!/bin/sh\necho \"scancel $*\" >> \"$(dirname \"$0\")/calls.log\"\n";

/// A folder of stand-in Slurm commands.
fn fake_slurm(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("fake-slurm");
    std::fs::create_dir_all(&bin).unwrap();
    for (name, text) in [("sbatch", SBATCH), ("squeue", SQUEUE), ("scancel", SCANCEL)] {
        let path = bin.join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    bin
}

/// `qnnc args` run in `cwd` with `bin` first on the PATH (or as the whole PATH).
fn qnnc_with_path(cwd: &Path, path: &str, env: &[(&str, &str)], args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_qnnc"))
        .args(args)
        .current_dir(cwd)
        .env("PATH", path)
        .envs(env.iter().copied())
        .output()
        .expect("qnnc runs")
}

fn path_with(bin: &Path) -> String {
    format!("{}:{}", bin.display(), std::env::var("PATH").unwrap())
}

fn calls(bin: &Path) -> String {
    std::fs::read_to_string(bin.join("calls.log")).unwrap_or_default()
}

#[test]
fn zero_shards_and_a_missing_sbatch_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let bin = fake_slurm(dir.path());
    let zero = qnnc_with_path(
        dir.path(),
        &path_with(&bin),
        &[],
        &["explore", "--quick", "--slurm", "0", "-o", "run"],
    );
    assert_user_error(&zero, &["--slurm", "at least 1 shard"]);

    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let missing = qnnc_with_path(
        dir.path(),
        empty.to_str().unwrap(),
        &[],
        &["explore", "--quick", "--slurm", "3", "-o", "run"],
    );
    assert_user_error(&missing, &["--slurm", "sbatch is not on the PATH"]);
    assert!(!dir.path().join("run").exists(), "nothing is written");
    assert_eq!(calls(&bin), "");
    // sbatch refusing the shards: its reason on one line, and nothing left written.
    let refusing = dir.path().join("refusing");
    std::fs::create_dir(&refusing).unwrap();
    let sbatch = refusing.join("sbatch");
    std::fs::write(
        &sbatch,
        "#!/bin/sh\necho 'sbatch: error: invalid partition name specified' >&2\nexit 1\n",
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&sbatch, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let sweep = common::example("explore_quick.toml");
    let refused = qnnc_with_path(
        dir.path(),
        &path_with(&refusing),
        &[],
        &[
            "explore",
            &sweep,
            "--slurm",
            "3",
            "--partition",
            "x",
            "-o",
            "run",
        ],
    );
    assert_user_error(&refused, &["--slurm", "invalid partition name"]);
    assert!(!dir.path().join("run").exists(), "nothing is left written");
    // --wait means nothing without --slurm.
    let wait = qnnc(&["explore", "--quick", "--wait"]);
    assert_eq!(wait.status.code(), Some(1));
}

#[test]
fn a_cache_folder_of_another_sweep_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let bin = fake_slurm(dir.path());
    let run = dir.path().join("run");
    ok(qnnc(&[
        "explore",
        "--quick",
        "--shard",
        "0/3",
        "-o",
        run.to_str().unwrap(),
    ]));
    let quick = std::fs::read_to_string(run.join("sweep/explore_quick.toml")).unwrap();
    for spec in ["fmnist_cnn.toml", "fmnist_mlp.toml"] {
        std::fs::copy(run.join("sweep").join(spec), dir.path().join(spec)).unwrap();
    }
    let other = dir.path().join("other.toml");
    std::fs::write(
        &other,
        quick.replace("name = \"quick\"", "name = \"other\""),
    )
    .unwrap();
    let fingerprint = run.join("cache/sweep.fingerprint");
    let before = std::fs::read(&fingerprint).unwrap();
    for slurm in [&[][..], &["--slurm", "2"][..]] {
        let mut args = vec!["explore", "other.toml", "-o", "run"];
        args.extend(slurm);
        let refused = qnnc_with_path(dir.path(), &path_with(&bin), &[], &args);
        assert_user_error(&refused, &["sweep.fingerprint", "'quick'", "'other'"]);
    }
    assert_eq!(calls(&bin), "", "nothing is submitted");
    assert_eq!(std::fs::read(&fingerprint).unwrap(), before);
    // The same sweep, edited (another seed), keeps its cache folder.
    let edited = dir.path().join("edited.toml");
    std::fs::write(&edited, quick.replace("seed = 1", "seed = 2")).unwrap();
    ok(qnnc_with_path(
        dir.path(),
        &path_with(&bin),
        &[],
        &["explore", "edited.toml", "--shard", "0/3", "-o", "run"],
    ));
}

#[test]
fn shards_and_collect_on_slurm_give_the_results_of_one_machine() {
    let dir = tempfile::tempdir().unwrap();
    let bin = fake_slurm(dir.path());
    let (local, cluster) = (dir.path().join("local"), dir.path().join("cluster"));
    std::fs::create_dir_all(&local).unwrap();
    std::fs::create_dir_all(&cluster).unwrap();
    // The same -o from folders of their own: the reports name the same command.
    ok(qnnc_with_path(
        &local,
        &std::env::var("PATH").unwrap(),
        &[],
        &["explore", "--quick", "-o", "run"],
    ));
    let args = [
        "explore",
        "--quick",
        "--slurm",
        "3",
        "--wait",
        "--partition",
        "short",
        "-o",
        "run",
    ];
    let out = ok(qnnc_with_path(&cluster, &path_with(&bin), &[], &args));
    assert!(out.contains("as job array 100, and job 101"), "{out}");
    assert!(out.contains("shard 2 (job 100_2): COMPLETED"), "{out}");
    assert!(out.contains("collect job 101: COMPLETED"), "{out}");
    assert!(out.contains("minimum-energy networks:"), "{out}");
    for file in ["results.json", "report.md", "results.csv"] {
        assert_eq!(
            std::fs::read(local.join("run").join(file)).unwrap(),
            std::fs::read(cluster.join("run").join(file)).unwrap(),
            "{file} differs"
        );
    }
    let calls = calls(&bin);
    for needle in [
        "--array=0-2",
        "--cpus-per-task=2",
        "--time=02:00:00",
        "--partition=short",
        "--dependency=afterok:100",
        "--kill-on-invalid-dep=yes",
    ] {
        assert!(calls.contains(needle), "{needle} not in {calls}");
    }
    // Every shard computed its own points into the shared cache ...
    let log = |job: &str| {
        std::fs::read_to_string(cluster.join(format!("run/slurm/shard-{job}.log"))).unwrap()
    };
    assert!(log("100_1").contains("2 of 6 points in run/shards/1 (2 computed"));
    // ... so that a resubmission computes nothing again.
    ok(qnnc_with_path(&cluster, &path_with(&bin), &[], &args));
    for i in 0..3 {
        let text = log(&format!("102_{i}"));
        assert!(text.contains("(0 computed, 2 from the cache)"), "{text}");
    }
}

#[test]
fn a_failed_shard_is_named_by_its_job_id() {
    let dir = tempfile::tempdir().unwrap();
    let bin = fake_slurm(dir.path());
    let failed = qnnc_with_path(
        dir.path(),
        &path_with(&bin),
        &[("FAKE_FAIL_TASK", "1")],
        &["explore", "--quick", "--slurm", "3", "--wait", "-o", "run"],
    );
    assert_user_error(
        &failed,
        &[
            "--slurm",
            "shard 1 (job 100_1) ended FAILED",
            "shard-100_1.log",
        ],
    );
    // The collect job, which can no longer run, is cancelled.
    assert!(calls(&bin).contains("scancel 101"), "{}", calls(&bin));
    assert!(!dir.path().join("run/report.md").exists());
}
