//! A 5 x 7 bitmap font for the orientation letters, drawn at twice the size with a dark shadow.

fn glyph(c: char) -> [u8; 7] {
    match c {
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        'A' => [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'P' => [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        'S' => [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E],
        'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        _ => [0; 7],
    }
}

/// Draws `c` with its top-left corner near (x, y - 7) so that `y` is the glyph's vertical middle.
pub fn draw(img: &mut super::Rgb, c: char, x: usize, y: usize) {
    let g = glyph(c);
    let top = y.saturating_sub(7);
    for (shadow, colour) in [(1usize, [0u8, 0, 0]), (0, [255, 220, 0])] {
        for (r, bits) in g.iter().enumerate() {
            for col in 0..5 {
                if bits >> (4 - col) & 1 == 1 {
                    for dy in 0..2 {
                        for dx in 0..2 {
                            img.set(x + col * 2 + dx + shadow, top + r * 2 + dy + shadow, colour);
                        }
                    }
                }
            }
        }
    }
}

/// Draws `text` (ASCII; other characters as `?`) with the 8x8 public-domain font of `font8x8`, top-left
/// at (x, y), in `colour` over a one-pixel dark shadow; clipped at the picture's right edge.
pub fn text(img: &mut super::Rgb, text: &str, x: usize, y: usize, colour: [u8; 3]) {
    for (n, c) in text.chars().enumerate() {
        let c = if c.is_ascii() && !c.is_ascii_control() {
            c
        } else {
            '?'
        };
        let g = font8x8::legacy::BASIC_LEGACY[c as usize];
        let x0 = x + n * 8;
        if x0 + 8 > img.width {
            break;
        }
        for (shadow, col) in [(1usize, [0u8, 0, 0]), (0, colour)] {
            for (r, bits) in g.iter().enumerate() {
                for b in 0..8 {
                    // Bit 0 is the leftmost pixel.
                    if bits >> b & 1 == 1 {
                        let (px, py) = (x0 + b + shadow, y + r + shadow);
                        if px < img.width && py < img.height {
                            img.set(px, py, col);
                        }
                    }
                }
            }
        }
    }
}
