//! `qnnc explore` as a user runs it: the quick sweep's outputs are complete and consistent, a
//! second run recomputes nothing, shards collect into the same results, and bad sweeps are
//! refused. Needs Fashion-MNIST (`make test` installs it).

use crate::common;
use common::{ok, qnnc};

use std::path::Path;

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn energy(point: &serde_json::Value, profile: &str) -> f64 {
    point["energy"][profile].as_f64().unwrap()
}

#[test]
fn quick_sweep_is_complete_consistent_and_resumable() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("quick");
    let first = ok(qnnc(&["explore", "--quick", "-o", out.to_str().unwrap()]));
    assert!(first.contains("6 of 6 points"), "{first}");
    assert!(first.contains("(6 computed, 0 from the cache)"), "{first}");
    for file in [
        "results.json",
        "results.csv",
        "report.md",
        "points.json",
        "plots/error_vs_energy_moons-dram.svg",
    ] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    let points = read_json(&out.join("results.json"));
    let points = points.as_array().unwrap();
    let grid = read_json(&out.join("points.json"))["grid"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(points.len(), grid.len());
    for id in &grid {
        assert!(points.iter().any(|p| &p["id"] == id), "{id} missing");
    }
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + points.len());

    // The iso-accuracy choice in the report is the least energy among the points that reach
    // the target.
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    for target in [50.0, 65.0] {
        let best = points
            .iter()
            .filter(|p| p["integer_accuracy"].as_f64().unwrap() >= target)
            .min_by(|a, b| energy(a, "moons-dram").total_cmp(&energy(b, "moons-dram")))
            .expect("the quick sweep reaches its low targets");
        let id = best["id"].as_str().unwrap();
        assert!(first.contains(&format!("at {target} %: {id}")), "{first}");
        assert!(report.contains(id));
    }
    // A target no point reaches is said plainly, and the run still succeeds.
    assert!(report.contains("No point reaches 99.0 %."), "{report}");
    assert!(first.contains("at 99 %: no point reaches the target"));

    let first_bytes = std::fs::read(out.join("results.json")).unwrap();
    let second = ok(qnnc(&["explore", "--quick", "-o", out.to_str().unwrap()]));
    assert!(
        second.contains("(0 computed, 6 from the cache)"),
        "{second}"
    );
    assert_eq!(
        std::fs::read(out.join("results.json")).unwrap(),
        first_bytes
    );

    // A corrupt cache entry is recomputed, with a warning.
    let cache = out.join("cache");
    let entry = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .unwrap();
    std::fs::write(&entry, "{ not json").unwrap();
    let third = qnnc(&["explore", "--quick", "-o", out.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&third.stderr);
    assert!(third.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning: corrupt cache entry recomputed"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&third.stdout).contains("(1 computed, 5 from the cache)"));
    assert_eq!(
        read_json(&out.join("results.json")).as_array().unwrap(),
        points
    );
}

#[test]
fn three_shards_collect_into_the_results_of_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole");
    ok(qnnc(&["explore", "--quick", "-o", whole.to_str().unwrap()]));
    let mut shards = Vec::new();
    for i in 0..3 {
        let shard = dir.path().join(format!("shard{i}"));
        let out = ok(qnnc(&[
            "explore",
            "--quick",
            "--shard",
            &format!("{i}/3"),
            "-o",
            shard.to_str().unwrap(),
        ]));
        assert!(out.contains("2 of 6 points"), "{out}");
        assert!(
            !shard.join("report.md").exists(),
            "a shard writes no report"
        );
        shards.push(shard.display().to_string());
    }
    let collected = dir.path().join("collected");
    let mut args = vec!["explore", "-o", collected.to_str().unwrap(), "--collect"];
    args.extend(shards.iter().map(String::as_str));
    ok(qnnc(&args));
    assert_eq!(
        read_json(&collected.join("results.json")),
        read_json(&whole.join("results.json"))
    );
    assert_eq!(
        std::fs::read_to_string(collected.join("results.csv")).unwrap(),
        std::fs::read_to_string(whole.join("results.csv")).unwrap()
    );

    // Slices of another sweep are refused; so is a collection that misses a shard.
    let other_sweep = dir.path().join("other.toml");
    let quick = std::fs::read_to_string(whole.join("sweep/explore_quick.toml")).unwrap();
    std::fs::write(&other_sweep, quick.replace("seed = 1", "seed = 2")).unwrap();
    for (name, text) in [
        ("fmnist_cnn.toml", "fmnist_cnn.toml"),
        ("fmnist_mlp.toml", "fmnist_mlp.toml"),
    ] {
        std::fs::copy(whole.join("sweep").join(text), dir.path().join(name)).unwrap();
    }
    let other = dir.path().join("other");
    ok(qnnc(&[
        "explore",
        other_sweep.to_str().unwrap(),
        "--shard",
        "0/3",
        "-o",
        other.to_str().unwrap(),
    ]));
    let refused = qnnc(&[
        "explore",
        "-o",
        dir.path().join("x").to_str().unwrap(),
        "--collect",
        &shards[0],
        other.to_str().unwrap(),
    ]);
    assert_eq!(refused.status.code(), Some(1));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("another sweep") && err.trim_end().lines().count() == 1,
        "{err}"
    );
    let partial = qnnc(&[
        "explore",
        "-o",
        dir.path().join("y").to_str().unwrap(),
        "--collect",
        &shards[0],
        &shards[1],
    ]);
    assert_eq!(partial.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&partial.stderr).contains("missing"));
}

#[test]
fn empty_grids_and_bad_shards_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = dir.path().join("empty.toml");
    std::fs::write(
        &sweep,
        "name = \"empty\"\ntargets = [90.0]\nprofiles = [\"moons-dram\"]\n",
    )
    .unwrap();
    let out = qnnc(&[
        "explore",
        sweep.to_str().unwrap(),
        "-o",
        dir.path().join("o").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("empty.toml") && err.contains("grid is empty"),
        "{err}"
    );
    let out = qnnc(&[
        "explore",
        "--quick",
        "--shard",
        "3/3",
        "-o",
        dir.path().join("p").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--shard"));
}

#[test]
fn sweep_settings_that_cannot_train_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let quick = dir.path().join("quick");
    ok(qnnc(&[
        "explore",
        "--quick",
        "--shard",
        "0/6",
        "-o",
        quick.to_str().unwrap(),
    ]));
    let text = std::fs::read_to_string(quick.join("sweep/explore_quick.toml")).unwrap();
    for (edit, field) in [
        (text.replace("batch = 25", "batch = 0"), "batch"),
        (
            text.replace("learning_rate = 0.005", "learning_rate = -1.0"),
            "learning_rate",
        ),
        (
            text.replace(
                "profiles = [\"moons-dram\", \"moons-sram\", \"horowitz45-pj\"]",
                "profiles = []",
            ),
            "profiles",
        ),
    ] {
        let sweep = quick.join("sweep/bad.toml");
        std::fs::write(&sweep, edit).unwrap();
        let out = qnnc(&[
            "explore",
            sweep.to_str().unwrap(),
            "-o",
            dir.path().join("o").to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("bad.toml") && err.contains(field), "{err}");
    }
}

/// The words of every `<text>` element of an SVG file.
fn svg_texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|part| {
            let body = part.split_once('>')?.1;
            Some(body.split("</text>").next()?.trim().to_string())
        })
        .collect()
}

#[test]
fn the_plots_render_to_png_and_name_families_precisions_targets_and_winners() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("quick");
    ok(qnnc(&["explore", "--quick", "-o", out.to_str().unwrap()]));
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    for profile in ["moons-dram", "moons-sram", "horowitz45-pj"] {
        for plot in ["error_vs_energy", "energy_breakdown"] {
            let svg = out.join(format!("plots/{plot}_{profile}.svg"));
            // Rendered by librsvg (Debian's librsvg2-bin, which `make setup` installs), as
            // a viewer would: a valid picture, not only valid text.
            let png = dir.path().join(format!("{plot}_{profile}.png"));
            let status = std::process::Command::new("rsvg-convert")
                .arg("-o")
                .arg(&png)
                .arg(&svg)
                .status()
                .expect("rsvg-convert runs (apt-get install librsvg2-bin)");
            assert!(status.success(), "{}", svg.display());
            let bytes = std::fs::read(&png).unwrap();
            assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "{}", png.display());
            let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
            assert!(width >= 600, "{width}");
            let texts = svg_texts(&std::fs::read_to_string(&svg).unwrap());
            assert!(
                texts.iter().all(|t| !t.is_empty()),
                "an empty label: {texts:?}"
            );
            let has = |needle: &str| texts.iter().any(|t| t.contains(needle));
            assert!(has("chosen at 50.0 %"), "{plot} {profile}: {texts:?}");
            if plot == "error_vs_energy" {
                for label in [
                    "MLP",
                    "CNN",
                    "1 bit",
                    "4 bits",
                    "target 50.0 % (error 50.0 %)",
                    "target 65.0 %",
                    "Pareto front",
                ] {
                    assert!(has(label), "{label:?} not in {plot} {profile}: {texts:?}");
                }
                // The winner named in the plot is the one the report names.
                let winner = texts
                    .iter()
                    .find_map(|t| t.split_once(": chosen at").map(|(name, _)| name))
                    .unwrap();
                assert!(report.contains(winner), "{winner} not in the report");
            }
        }
    }
}
