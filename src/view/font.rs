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
