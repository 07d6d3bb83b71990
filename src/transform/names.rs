//! What an unknown transform `type` was probably meant to be: the voxaug name of a TorchIO or MONAI
//! transform (`RandomAffine`, `RandFlipd`), a type written in CamelCase (`CenterCrop`), or a known type
//! within a typo or two (`rotatee`). Used by the pipeline parser's error message.

/// TorchIO and MONAI class names and the voxaug type that does their job (the README's table "Coming
/// from TorchIO or MONAI" lists the same names). MONAI's dictionary forms (`RandFlipd`, `RandFlipD`, `RandFlipDict`) are
/// matched through their base name.
const PEERS: &[(&str, &str, &str)] = &[
    // (peer class, voxaug type, whose)
    ("Affine", "affine", "TorchIO's and MONAI's"),
    ("RandomAffine", "random_affine", "TorchIO's"),
    ("RandAffine", "random_affine", "MONAI's"),
    ("Rotate", "rotate", "MONAI's"),
    ("RandRotate", "random_affine", "MONAI's"),
    ("Zoom", "zoom", "MONAI's"),
    ("RandZoom", "random_zoom", "MONAI's"),
    ("Flip", "flip", "TorchIO's and MONAI's"),
    ("RandomFlip", "random_flip", "TorchIO's"),
    ("RandFlip", "random_flip", "MONAI's"),
    ("Crop", "crop", "TorchIO's"),
    ("SpatialCrop", "crop", "MONAI's"),
    ("CenterSpatialCrop", "center_crop", "MONAI's"),
    ("RandSpatialCrop", "random_crop", "MONAI's"),
    ("Pad", "pad", "TorchIO's"),
    ("SpatialPad", "pad", "MONAI's"),
    ("CropOrPad", "crop_or_pad", "TorchIO's"),
    ("ResizeWithPadOrCrop", "crop_or_pad", "MONAI's"),
    ("CropForeground", "crop_foreground", "MONAI's"),
    ("Resample", "resample", "TorchIO's"),
    ("Spacing", "resample", "MONAI's"),
    ("ResampleToMatch", "resample_to", "MONAI's"),
    ("Resize", "resize", "TorchIO's and MONAI's"),
    ("ToCanonical", "to_canonical", "TorchIO's"),
    ("Orientation", "to_canonical", "MONAI's"),
    ("RandomElasticDeformation", "elastic_bspline", "TorchIO's"),
    ("Rand3DElastic", "elastic", "MONAI's"),
    ("RandomAnisotropy", "random_low_resolution", "TorchIO's"),
    (
        "RandSimulateLowResolution",
        "random_low_resolution",
        "MONAI's",
    ),
    ("Motion", "motion", "TorchIO's"),
    ("RandomMotion", "random_motion", "TorchIO's"),
    ("Ghosting", "ghosting", "TorchIO's"),
    ("RandomGhosting", "random_ghosting", "TorchIO's"),
    ("Spike", "spike", "TorchIO's"),
    ("RandomSpike", "random_spike", "TorchIO's"),
    ("RandKSpaceSpikeNoise", "random_spike", "MONAI's"),
    ("GibbsNoise", "gibbs", "MONAI's"),
    ("RandGibbsNoise", "random_gibbs", "MONAI's"),
    ("Clamp", "clip", "TorchIO's"),
    ("ThresholdIntensity", "clip", "MONAI's"),
    ("ClipIntensityPercentiles", "percentile_clip", "MONAI's"),
    ("ZNormalization", "zscore", "TorchIO's"),
    ("NormalizeIntensity", "zscore", "MONAI's"),
    ("RescaleIntensity", "minmax", "TorchIO's"),
    ("ScaleIntensityRangePercentiles", "minmax", "MONAI's"),
    (
        "HistogramStandardization",
        "histogram_standardize",
        "TorchIO's",
    ),
    ("Gamma", "gamma", "TorchIO's"),
    ("RandomGamma", "random_gamma", "TorchIO's"),
    ("AdjustContrast", "gamma", "MONAI's"),
    ("RandAdjustContrast", "random_gamma", "MONAI's"),
    ("Noise", "noise", "TorchIO's"),
    ("RandomNoise", "random_noise", "TorchIO's"),
    ("RandGaussianNoise", "random_noise", "MONAI's"),
    ("Blur", "blur", "TorchIO's"),
    ("RandomBlur", "random_blur", "TorchIO's"),
    ("GaussianSmooth", "blur", "MONAI's"),
    ("RandGaussianSmooth", "random_blur", "MONAI's"),
    ("BiasField", "bias_field", "TorchIO's"),
    ("RandomBiasField", "random_bias_field", "TorchIO's"),
    ("RandBiasField", "random_bias_field", "MONAI's"),
    ("ScaleIntensityFixedMean", "contrast", "MONAI's"),
    ("RandScaleIntensityFixedMean", "random_contrast", "MONAI's"),
    ("ScaleIntensity", "minmax", "MONAI's"),
    ("RandScaleIntensity", "random_brightness", "MONAI's"),
    ("ShiftIntensity", "intensity_shift", "MONAI's"),
    ("RandShiftIntensity", "random_intensity_shift", "MONAI's"),
    ("RemapLabels", "remap_labels", "TorchIO's"),
    ("MapLabelValue", "remap_labels", "MONAI's"),
    ("SequentialLabels", "sequential_labels", "TorchIO's"),
    ("LabelSampler", "label_crop", "TorchIO's"),
    ("RandCropByPosNegLabel", "label_crop", "MONAI's"),
    ("Compose", "compose", "TorchIO's and MONAI's"),
    ("OneOf", "one_of", "TorchIO's and MONAI's"),
    ("SomeOf", "some_of", "MONAI's"),
];

/// Peer names that are not a transform in voxaug, with what does their job.
const ELSEWHERE: &[(&str, &str)] = &[
    (
        "OneHot",
        "one-hot encoding is the loader's `one_hot=True` (with `classes=[...]`), not a transform",
    ),
    (
        "AsDiscrete",
        "one-hot encoding is the loader's `one_hot=True` (with `classes=[...]`), not a transform",
    ),
    (
        "RemoveLabels",
        "`keep_labels` keeps the labels it lists (every other label becomes 0)",
    ),
];

/// The message for the unknown type `ty` at `at`: the hint, if there is one, and every known type
/// (`fixed`: serde's list of the deterministic ones, "`a`, `b`, ..."; `random`: the random ones).
pub(crate) fn unknown_type(at: &str, ty: &str, fixed: &str, random: &[&str]) -> String {
    let known: Vec<&str> = fixed
        .split(", ")
        .map(|t| t.trim_matches('`'))
        .chain(random.iter().copied())
        .collect();
    let hint = suggest(ty, &known)
        .map(|h| format!("; {h}"))
        .unwrap_or_default();
    let random: Vec<String> = random.iter().map(|t| format!("`{t}`")).collect();
    format!(
        "{at}: unknown transform type `{ty}`{hint} (known: {fixed}, {})",
        random.join(", ")
    )
}

/// A hint for the unknown type `ty` among the `known` types: `did you mean ...?` (or what does the
/// job instead), or `None` when nothing is close.
pub(crate) fn suggest(ty: &str, known: &[&str]) -> Option<String> {
    let base = monai_base(ty);
    for name in [ty, base] {
        if let Some((peer, v, whose)) = PEERS.iter().find(|p| p.0.eq_ignore_ascii_case(name)) {
            return Some(format!("did you mean `{v}` ({whose} {peer})?"));
        }
        if let Some((_, what)) = ELSEWHERE.iter().find(|p| p.0.eq_ignore_ascii_case(name)) {
            return Some(what.to_string());
        }
    }
    let snake = snake_case(ty);
    if snake != ty && known.contains(&snake.as_str()) {
        return Some(format!("did you mean `{snake}`?"));
    }
    // The closest known type within a small edit distance (a typo, a missing underscore).
    let lower = snake.to_ascii_lowercase();
    let limit = (lower.len() / 4).clamp(1, 3);
    known
        .iter()
        .map(|k| (edit_distance(&lower, k), *k))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, k)| format!("did you mean `{k}`?"))
}

/// MONAI's dictionary transforms append `d`, `D` or `Dict` to the array transform's name.
fn monai_base(ty: &str) -> &str {
    ["Dict", "dict", "d", "D"]
        .iter()
        .find_map(|s| ty.strip_suffix(s))
        .unwrap_or(ty)
}

/// `CenterCrop` -> `center_crop`, `Rand3DElastic` -> `rand3_d_elastic` (only used to look up known
/// types, so odd splits only miss).
fn snake_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for (i, c) in s.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 && !out.ends_with('_') {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Levenshtein distance (insertions, deletions, substitutions), over bytes.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, &ca) in a.iter().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let next = (diag + usize::from(ca != cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diag = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_names_typos_and_camel_case_get_a_hint() {
        let known = ["rotate", "random_affine", "center_crop", "zscore", "flip"];
        let hint = |t| suggest(t, &known).unwrap_or_default();
        assert_eq!(
            hint("RandomAffine"),
            "did you mean `random_affine` (TorchIO's RandomAffine)?"
        );
        assert_eq!(
            hint("RandFlipd"),
            "did you mean `random_flip` (MONAI's RandFlip)?"
        );
        assert_eq!(
            hint("randflipdict"),
            "did you mean `random_flip` (MONAI's RandFlip)?"
        );
        assert_eq!(hint("CenterCrop"), "did you mean `center_crop`?");
        assert_eq!(hint("rotatee"), "did you mean `rotate`?");
        assert_eq!(
            hint("randomaffine"),
            "did you mean `random_affine` (TorchIO's RandomAffine)?"
        );
        assert_eq!(hint("random_afine"), "did you mean `random_affine`?");
        assert!(hint("OneHot").contains("one_hot=True"));
        assert_eq!(suggest("wobble", &known), None);
        assert_eq!(suggest("", &known), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn every_suggested_type_exists_and_the_parser_gives_the_hint() {
        for (peer, v, _) in PEERS {
            let json = format!(r#"{{"transforms": [{{"type": "{v}"}}]}}"#);
            if let Err(e) = crate::Pipeline::from_json(&json) {
                let e = e.to_string();
                assert!(!e.contains("unknown transform type"), "{peer} -> {v}: {e}");
            }
        }
        let e = crate::Pipeline::from_json(r#"[{"type": "RandomAffine", "degrees": 10}]"#)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown transform type `RandomAffine`; did you mean `random_affine`"),
            "{e}"
        );
    }
}
