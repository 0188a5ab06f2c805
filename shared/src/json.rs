//! Serde helpers of the JSON objects the commands print and `run.json` holds.

use serde::{Deserialize, Deserializer};

/// Reads a number that may be written as `null`: JSON has no NaN or infinity, so
/// serde_json writes a non-finite `f64` as `null`; it reads back as NaN (use with
/// `#[serde(deserialize_with = "flus_shared::json::f64_or_null")]`).
pub fn f64_or_null<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Serialize, Deserialize)]
    struct Fit {
        #[serde(deserialize_with = "f64_or_null")]
        r2: f64,
    }

    #[test]
    fn a_non_finite_number_written_as_null_reads_back_as_nan() {
        let text = serde_json::to_string(&Fit { r2: f64::NAN }).unwrap();
        assert_eq!(text, r#"{"r2":null}"#);
        assert!(serde_json::from_str::<Fit>(&text).unwrap().r2.is_nan());
        assert_eq!(
            serde_json::from_str::<Fit>(r#"{"r2":0.25}"#).unwrap().r2,
            0.25
        );
        // a missing key is still an error naming it
        let e = serde_json::from_str::<Fit>("{}").unwrap_err().to_string();
        assert!(e.contains("missing field `r2`"), "{e}");
    }
}
