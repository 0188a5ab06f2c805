//! Tests of the parent module.

use super::*;

const MINIMAL: &str = r##"
[study]
name = "t"
[[classes]]
code = 1
name = "forest"
color = "#00ff00"
weight = 0.5
[[classes]]
code = 3
name = "urban"
color = "#ff0000"
weight = 1.0
carbon = { above = 1, below = 2, soil = 3, dead = 4 }
[[landuse]]
year = 2000
path = "a.tif"
[[landuse]]
year = 2010
path = "b.tif"
[markov]
from = 2000
to = 2010
target_year = 2030
[[scenarios]]
name = "base"
matrix = [[1, 1], [0, 1]]
"##;

fn check(text: &str) -> Result<StudyConfig> {
    let c = parse(text, Path::new("study.toml"))?;
    c.validate(Path::new("study.toml"))?;
    Ok(c)
}

#[test]
fn settings_that_cannot_finish_or_mean_nothing_are_errors_naming_the_key() {
    let with = |section: &str| format!("{MINIMAL}\n{section}\n");
    for (text, key, expected) in [
        (
            with("[ann]\nhidden = 1001"),
            "ann.hidden",
            "1001: expected 1 to 1000",
        ),
        (
            with("[ann]\nepochs = 100001"),
            "ann.epochs",
            "100001: expected 1 to 100000",
        ),
        (
            with("[ca]\nneighbourhood = 53"),
            "ca.neighbourhood",
            "53: expected an odd number from 3 to 51",
        ),
        (
            with("[ca]\nmax_iterations = 100001"),
            "ca.max_iterations",
            "100001: expected 1 to 100000",
        ),
        (
            with("[gwr]\nsample_points = 100001"),
            "gwr.sample_points",
            "100001: expected 10 to 100000",
        ),
        (
            with("[gwr]\npermutations = 10000"),
            "gwr.permutations",
            "10000: expected 0 (no significance test) to 9999",
        ),
        (
            with("[gwr]\nfixed = true\nbandwidth = -5"),
            "gwr.bandwidth",
            "-5: expected a distance > 0",
        ),
        (
            // no drivers: intercept + 0 coefficients need 2 neighbours
            with("[gwr]\nbandwidth = 2.5"),
            "gwr.bandwidth",
            "2.5: expected a whole number of neighbours from 2",
        ),
        (
            MINIMAL.replace("name = \"t\"", "name = \"t\"\ngrid_tolerance = 0.5"),
            "study.grid_tolerance",
            "0.5: expected a number of cells in [0, 0.5)",
        ),
    ] {
        let e = check(&text).unwrap_err().to_string();
        assert!(
            e.contains("study.toml") && e.contains(&format!("`{key}`")) && e.contains(expected),
            "{key}: {e}"
        );
    }
    // the bounds themselves are accepted
    check(&with(
        "[ann]\nhidden = 1000\nepochs = 100000\n[ca]\nneighbourhood = 51",
    ))
    .unwrap();
    check(&with("[gwr]\nsample_points = 100000\nbandwidth = 2")).unwrap();
}

#[test]
fn ca_patches_take_plus_defaults_when_empty_and_name_the_key_when_out_of_range() {
    assert_eq!(check(MINIMAL).unwrap().ca.patches, None);
    let c = check(&format!("{MINIMAL}\n[ca]\npatches = {{}}\n")).unwrap();
    assert_eq!(
        c.ca.patches,
        Some(PatchesConfig {
            threshold: 0.5,
            decay: 0.1,
            seeds: 0.0001
        })
    );
    let c = check(&format!(
        "{MINIMAL}\n[ca]\npatches = {{ threshold = 0.7, seeds = 0.01 }}\n"
    ))
    .unwrap();
    let p = c.ca.patches.unwrap();
    assert_eq!((p.threshold, p.decay, p.seeds), (0.7, 0.1, 0.01));
    for (extra, key, expected) in [
        (
            "patches = { decay = 0 }",
            "ca.patches.decay",
            "0, expected a value in (0, 1]",
        ),
        (
            "patches = { threshold = 2 }",
            "ca.patches.threshold",
            "2, expected",
        ),
        (
            "patches = { seeds = -1 }",
            "ca.patches.seeds",
            "-1, expected a value in [0, 1]",
        ),
    ] {
        let e = check(&format!("{MINIMAL}\n[ca]\n{extra}\n"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("study.toml") && e.contains(&format!("`{key}`")) && e.contains(expected),
            "{key}: {e}"
        );
    }
    let e = check(&format!("{MINIMAL}\n[ca]\npatches = {{ seed = 1 }}\n"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("seed"), "{e}");
}

#[test]
fn random_forest_alone_is_a_valid_study_and_its_bounds_name_the_key() {
    let driver = "[[drivers]]\nname = \"slope\"\npath = \"s.tif\"\n[[drivers]]\nname = \"dem\"\npath = \"d.tif\"\n";
    let c = check(&format!(
        "{MINIMAL}\n{driver}[suitability]\nmodel = \"random_forest\"\n"
    ))
    .unwrap();
    assert_eq!(c.suitability.model, SuitabilityModel::RandomForest);
    assert_eq!(c.random_forest.n_trees, 20);
    assert_eq!(c.random_forest.sample_rate, 0.01);
    assert_eq!(c.random_forest.mtry, None);
    // the default model is the ANN
    assert_eq!(
        check(MINIMAL).unwrap().suitability.model,
        SuitabilityModel::Ann
    );
    let rf = |extra: &str| {
        check(&format!(
            "{MINIMAL}\n{driver}[suitability]\nmodel = \"random_forest\"\n{extra}"
        ))
        .unwrap_err()
        .to_string()
    };
    for (extra, key, expected) in [
        (
            "[random_forest]\nn_trees = 0",
            "random_forest.n_trees",
            "0: expected 1 to 10000",
        ),
        (
            "[random_forest]\nmtry = 3",
            "random_forest.mtry",
            "3: expected 1 to 2",
        ),
        (
            "[random_forest]\nsample_rate = 1.5",
            "random_forest.sample_rate",
            "1.5: expected a share in (0, 1]",
        ),
        (
            "[ann]\nsuitability = \"s.tif\"",
            "suitability.model",
            "together with [ann] suitability",
        ),
    ] {
        let e = rf(extra);
        assert!(
            e.contains(&format!("`{key}`")) && e.contains(expected),
            "{key}: {e}"
        );
    }
    let e = check(&format!(
        "{MINIMAL}\n[suitability]\nmodel = \"random_forest\"\n"
    ))
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("`suitability.model`") && e.contains("no [[drivers]]"),
        "{e}"
    );
    let e = check(&format!("{MINIMAL}\n[suitability]\nmodel = \"forest\"\n"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("suitability.model") && e.contains("random_forest"),
        "{e}"
    );
}

#[test]
fn a_minimal_config_parses_with_defaults() {
    let c = check(MINIMAL).unwrap();
    assert_eq!(c.ca.neighbourhood, 3);
    assert_eq!(c.ca.max_iterations, 300);
    assert_eq!(c.study.seed, 1);
    assert_eq!(c.classes[1].carbon.unwrap().total(), 10.0);
    assert_eq!(c.classes[0].rgb(), [0, 255, 0]);
}

#[test]
fn ca_allocation_is_net_by_default_transitions_on_request_and_nothing_else() {
    assert_eq!(check(MINIMAL).unwrap().ca.allocation, Allocation::Net);
    let c = check(&MINIMAL.replace(
        "[markov]\n",
        "[ca]\nallocation = \"transitions\"\n[markov]\n",
    ))
    .unwrap();
    assert_eq!(c.ca.allocation, Allocation::Transitions);
    let e = check(&MINIMAL.replace("[markov]\n", "[ca]\nallocation = \"pairs\"\n[markov]\n"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("study.toml") && e.contains("pairs") && e.contains("transitions"),
        "{e}"
    );
}

#[test]
fn transitions_go_with_patches_and_with_staged_years() {
    let t = format!("{MINIMAL}\n[ca]\nallocation = \"transitions\"\n");
    assert!(check(&t).is_ok());
    let c = check(&format!("{t}patches = {{}}\n")).unwrap();
    assert_eq!(c.ca.allocation, Allocation::Transitions);
    assert!(c.ca.patches.is_some());
    // staged years: each stage's quotas are projected from the map it starts from
    let staged = check(&t.replace("target_year = 2030", "target_years = [2030, 2040]")).unwrap();
    assert_eq!(staged.ca.allocation, Allocation::Transitions);
    assert!(staged.markov.staged());
}

#[test]
fn ca_unmet_is_error_by_default_best_effort_on_request_and_nothing_else() {
    assert_eq!(check(MINIMAL).unwrap().ca.unmet, Unmet::Error);
    let c =
        check(&MINIMAL.replace("[markov]\n", "[ca]\nunmet = \"best_effort\"\n[markov]\n")).unwrap();
    assert_eq!(c.ca.unmet, Unmet::BestEffort);
    let e = check(&MINIMAL.replace("[markov]\n", "[ca]\nunmet = \"ignore\"\n[markov]\n"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("study.toml") && e.contains("ignore") && e.contains("best_effort"),
        "{e}"
    );
}

#[test]
fn an_unknown_key_is_an_error_naming_file_and_key() {
    let e = check(&MINIMAL.replace("[markov]\n", "[markov]\nfrom_year = 3\n"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("study.toml") && e.contains("markov") && e.contains("from_year"),
        "{e}"
    );
}

#[test]
fn a_matrix_of_the_wrong_shape_is_an_error() {
    let e = check(&MINIMAL.replace("[[1, 1], [0, 1]]", "[[1, 1, 0], [0, 1, 1]]"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("scenarios[0].matrix[0]") && e.contains("3 columns, expected 2"),
        "{e}"
    );
    let e = check(&MINIMAL.replace("[[1, 1], [0, 1]]", "[[1, 1]]"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("1 rows, expected 2"), "{e}");
    let e = check(&MINIMAL.replace("[[1, 1], [0, 1]]", "[[1, \"x\"], [0, 1]]"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("scenarios[0].matrix[0][1]") || e.contains("scenarios[0].matrix"),
        "{e}"
    );
}

#[test]
fn a_target_year_not_reachable_in_whole_steps_is_an_error() {
    let e = check(&MINIMAL.replace("target_year = 2030", "target_year = 2025"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("markov.target_year") && e.contains("whole steps of 10"),
        "{e}"
    );
    let ok = MINIMAL.replace(
        "target_year = 2030",
        "target_year = 2025\ninterpolate = true",
    );
    assert!(check(&ok).is_ok());
}

#[test]
fn staged_years_are_checked_and_target_year_with_target_years_is_an_error() {
    let staged =
        |years: &str| MINIMAL.replace("target_year = 2030", &format!("target_years = {years}"));
    let c = check(&staged("[2020, 2030, 2040]")).unwrap();
    assert_eq!(c.markov.years(), vec![2020, 2030, 2040]);
    assert_eq!(c.markov.final_year(), 2040);
    assert!(c.markov.staged());
    let one = check(MINIMAL).unwrap();
    assert_eq!(
        (one.markov.years(), one.markov.staged()),
        (vec![2030], false)
    );
    for (years, key, expected) in [
        (
            "[2020, 2035]",
            "markov.target_years[1]",
            "whole steps of 10",
        ),
        (
            "[2030, 2020]",
            "markov.target_years[1]",
            "not after the previous year 2030",
        ),
        (
            "[2010, 2020]",
            "markov.target_years[0]",
            "not after the base year",
        ),
        ("[]", "markov.target_years", "0 years; expected 1 to 127"),
    ] {
        let e = check(&staged(years)).unwrap_err().to_string();
        assert!(e.contains(key) && e.contains(expected), "{years}: {e}");
    }
    let both = MINIMAL.replace(
        "target_year = 2030",
        "target_year = 2030\ntarget_years = [2020, 2030]",
    );
    let e = check(&both).unwrap_err().to_string();
    assert!(
        e.contains("markov.target_year ") && e.contains("markov.target_years"),
        "{e}"
    );
    let none = MINIMAL.replace("target_year = 2030\n", "");
    let e = check(&none).unwrap_err().to_string();
    assert!(
        e.contains("markov.target_year") && e.contains("missing"),
        "{e}"
    );
}

#[test]
fn negative_carbon_pools_are_an_error() {
    let e = check(&MINIMAL.replace("soil = 3", "soil = -3"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("classes[1].carbon.soil") && e.contains("not negative"),
        "{e}"
    );
}

#[test]
fn bad_classes_are_errors() {
    let e = check(&MINIMAL.replace("code = 3", "code = 1"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("classes[1].code") && e.contains("used by two"),
        "{e}"
    );
    let e = check(&MINIMAL.replace("weight = 0.5", "weight = 1.5"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("classes[0].weight") && e.contains("outside [0, 1]"),
        "{e}"
    );
    let e = check(&MINIMAL.replace("\"#00ff00\"", "\"green\""))
        .unwrap_err()
        .to_string();
    assert!(e.contains("classes[0].color"), "{e}");
    let one = MINIMAL.replace("[[classes]]\ncode = 3", "[[xclasses]]\ncode = 3");
    assert!(check(&one).is_err());
}
