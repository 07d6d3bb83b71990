//! Saved transforms: ITK's text format (`.tfm`, LPS, fixed -> moving) and `transform.json`.

use crate::error::{Error, Result};
use crate::grid::{mat_inv, Mat4};
use serde::Deserialize;

/// ITK text transform file of a fixed -> moving world matrix (RAS in, LPS out).
pub fn to_tfm(m: &Mat4) -> String {
    let d = [-1.0, -1.0, 1.0];
    let mut p = Vec::with_capacity(12);
    for r in 0..3 {
        for c in 0..3 {
            p.push(d[r] * m[r][c] * d[c]);
        }
    }
    for r in 0..3 {
        p.push(d[r] * m[r][3]);
    }
    let fmt = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.17e}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    format!(
        "#Insight Transform File V1.0\n#Transform 0\nTransform: AffineTransform_double_3_3\nParameters: {}\nFixedParameters: 0 0 0\n",
        fmt(&p)
    )
}

/// Reads an ITK text transform (`AffineTransform`, `MatrixOffsetTransformBase`, `Euler3DTransform`
/// with matrix parameters is not supported: affine kinds only) as a fixed -> moving RAS world matrix.
pub fn from_tfm(text: &str) -> Result<Mat4> {
    let field = |name: &str| -> Result<Vec<f64>> {
        let line = text
            .lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .ok_or_else(|| Error::invalid(format!(".tfm: no `{name}` line")))?;
        line.split_whitespace()
            .map(|w| {
                w.parse::<f64>()
                    .map_err(|_| Error::invalid(format!(".tfm: `{w}` in {name} is not a number")))
            })
            .collect()
    };
    let kind = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Transform:"))
        .map(str::trim)
        .unwrap_or("");
    if !(kind.starts_with("AffineTransform_") || kind.starts_with("MatrixOffsetTransformBase_")) {
        return Err(Error::invalid(format!(
            ".tfm: transform type `{kind}` is not supported (AffineTransform_double_3_3 is; SimpleITK: \
             sitk.AffineTransform(t) converts a rigid one)"
        )));
    }
    let p = field("Parameters:")?;
    let c = field("FixedParameters:")?;
    if p.len() != 12 || c.len() != 3 || p.iter().chain(&c).any(|v| !v.is_finite()) {
        return Err(Error::invalid(
            ".tfm: a 3D affine needs 12 finite Parameters and 3 FixedParameters",
        ));
    }
    // ITK: y = A (x - c) + c + t, in LPS.
    let a = |r: usize, k: usize| p[3 * r + k];
    let mut lps = crate::grid::IDENTITY;
    for r in 0..3 {
        let mut b = c[r] + p[9 + r];
        for k in 0..3 {
            lps[r][k] = a(r, k);
            b -= a(r, k) * c[k];
        }
        lps[r][3] = b;
    }
    let d = [-1.0, -1.0, 1.0];
    let mut ras = crate::grid::IDENTITY;
    for r in 0..3 {
        for k in 0..3 {
            ras[r][k] = d[r] * lps[r][k] * d[k];
        }
        ras[r][3] = d[r] * lps[r][3];
    }
    Ok(ras)
}

/// Reads a saved transform: `transform.json` (`world_matrix`, `fixed_grid`) or an ITK `.tfm` (no grid).
pub fn read_transform(path: &std::path::Path) -> Result<(Mat4, Option<crate::transform::RefGrid>)> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let is_tfm = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("tfm") || e.eq_ignore_ascii_case("txt"));
    if is_tfm {
        return Ok((from_tfm(&text)?, None));
    }
    #[derive(Deserialize)]
    struct Saved {
        world_matrix: Mat4,
        #[serde(default)]
        fixed_grid: Option<crate::transform::RefGrid>,
    }
    let s: Saved = serde_json::from_str(&text).map_err(|e| {
        Error::invalid(format!(
            "{}: not a transform.json ({e}); expected {{\"world_matrix\": 4x4, \"fixed_grid\": ...}}",
            path.display()
        ))
    })?;
    if s.world_matrix.concat().iter().any(|v| !v.is_finite()) || mat_inv(&s.world_matrix).is_none()
    {
        return Err(Error::invalid(format!(
            "{}: world_matrix must be finite and invertible",
            path.display()
        )));
    }
    Ok((s.world_matrix, s.fixed_grid))
}
