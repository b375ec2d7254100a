//! A small rasteriser for `--plot FILE.png`: an RGB8 pixel buffer with filled rectangles,
//! Bresenham lines of a whole number of pixels' thickness (no anti-aliasing) and text in a
//! built-in 5x8 bitmap font (printable ASCII) scaled by a whole factor, encoded with the `png`
//! crate. Just enough to draw [`crate::plot`]'s panels without a plotting dependency.

/// A colour: red, green, blue.
pub type Rgb = [u8; 3];

/// Glyph width in font pixels (bits 4..0 of each row, bit 4 leftmost).
pub const GLYPH_WIDTH: u32 = 5;
/// Glyph height in font pixels: rows 0..=6 stand on the baseline, row 7 is the descender.
pub const GLYPH_HEIGHT: u32 = 8;
/// Rows above the baseline.
pub const GLYPH_ASCENT: u32 = 7;
/// Horizontal distance from one character to the next, in font pixels (1 pixel of spacing).
pub const GLYPH_ADVANCE: u32 = GLYPH_WIDTH + 1;

/// An RGB8 image, rows top to bottom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canvas {
    width: u32,
    height: u32,
    pixels: Vec<u8>,
}

impl Canvas {
    /// A `width` x `height` canvas filled with `background`.
    pub fn new(width: u32, height: u32, background: Rgb) -> Canvas {
        let pixels = background
            .iter()
            .copied()
            .cycle()
            .take(width as usize * height as usize * 3)
            .collect();
        Canvas {
            width,
            height,
            pixels,
        }
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The raw RGB8 bytes, row by row.
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    /// The colour at (`x`, `y`), or `None` outside the canvas.
    pub fn pixel(&self, x: i64, y: i64) -> Option<Rgb> {
        let i = self.index(x, y)?;
        Some([self.pixels[i], self.pixels[i + 1], self.pixels[i + 2]])
    }

    /// Paints (`x`, `y`); nothing outside the canvas.
    pub fn set(&mut self, x: i64, y: i64, color: Rgb) {
        if let Some(i) = self.index(x, y) {
            self.pixels[i..i + 3].copy_from_slice(&color);
        }
    }

    fn index(&self, x: i64, y: i64) -> Option<usize> {
        if x < 0 || y < 0 || x >= i64::from(self.width) || y >= i64::from(self.height) {
            return None;
        }
        Some((y as usize * self.width as usize + x as usize) * 3)
    }

    /// Fills the `w` x `h` rectangle whose top-left pixel is (`x`, `y`), clipped to the canvas.
    pub fn fill_rect(&mut self, x: i64, y: i64, w: i64, h: i64, color: Rgb) {
        let (x0, x1) = (x.max(0), (x + w).min(i64::from(self.width)));
        let (y0, y1) = (y.max(0), (y + h).min(i64::from(self.height)));
        for py in y0..y1 {
            for px in x0..x1 {
                self.set(px, py, color);
            }
        }
    }

    /// The outline of the `w` x `h` rectangle at (`x`, `y`), `thickness` pixels drawn inwards.
    pub fn stroke_rect(&mut self, x: i64, y: i64, w: i64, h: i64, thickness: i64, color: Rgb) {
        let t = thickness.max(1);
        self.fill_rect(x, y, w, t, color);
        self.fill_rect(x, y + h - t, w, t, color);
        self.fill_rect(x, y, t, h, color);
        self.fill_rect(x + w - t, y, t, h, color);
    }

    /// A line from (`x0`, `y0`) to (`x1`, `y1`), both ends included (Bresenham). A thickness
    /// above 1 paints neighbours across the line: below a mostly horizontal line's pixels, right
    /// of a mostly vertical one's (2 pixels: the pixel and the next; 3: one either side; …).
    pub fn line(&mut self, x0: i64, y0: i64, x1: i64, y1: i64, thickness: u32, color: Rgb) {
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
        let horizontal = dx >= -dy;
        let t = i64::from(thickness.max(1));
        let (from, to) = (-(t - 1) / 2, t / 2);
        let (mut x, mut y, mut err) = (x0, y0, dx + dy);
        loop {
            for o in from..=to {
                if horizontal {
                    self.set(x, y + o, color);
                } else {
                    self.set(x + o, y, color);
                }
            }
            if x == x1 && y == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }

    /// Draws `text` with its first glyph cell's top-left corner at (`x`, `y`), each font pixel
    /// a `scale` x `scale` square; characters outside printable ASCII draw as `?`. Returns the
    /// width drawn ([`text_width`]).
    pub fn text(&mut self, x: i64, y: i64, text: &str, scale: u32, color: Rgb) -> u32 {
        let s = i64::from(scale.max(1));
        for (n, c) in text.chars().enumerate() {
            let left = x + n as i64 * i64::from(GLYPH_ADVANCE) * s;
            for (row, bits) in glyph(c).iter().enumerate() {
                for col in 0..GLYPH_WIDTH {
                    if bits & (0b10000 >> col) != 0 {
                        self.fill_rect(left + i64::from(col) * s, y + row as i64 * s, s, s, color);
                    }
                }
            }
        }
        text_width(text, scale)
    }

    /// The canvas as a PNG file (8-bit RGB).
    pub fn encode_png(&self) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, self.width, self.height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder
            .write_header()
            .map_err(|e| format!("encoding the PNG header: {e}"))?;
        writer
            .write_image_data(&self.pixels)
            .map_err(|e| format!("encoding the PNG image: {e}"))?;
        writer
            .finish()
            .map_err(|e| format!("finishing the PNG: {e}"))?;
        Ok(out)
    }
}

/// The width in pixels of `text` drawn at `scale`: from the first glyph's left edge to the last
/// glyph's right edge (no trailing spacing).
pub fn text_width(text: &str, scale: u32) -> u32 {
    match text.chars().count() as u32 {
        0 => 0,
        n => (n * GLYPH_ADVANCE - 1) * scale.max(1),
    }
}

/// The rows of `c`'s glyph, top to bottom (`?` for anything but printable ASCII).
pub fn glyph(c: char) -> &'static [u8; 8] {
    let code = c as u32;
    if (0x20..=0x7e).contains(&code) {
        &FONT[(code - 0x20) as usize]
    } else {
        &FONT[(u32::from(b'?') - 0x20) as usize]
    }
}

/// Printable ASCII, 0x20 (space) to 0x7E (`~`): 8 rows of 5 bits each (bit 4 is the leftmost
/// column); rows 0..=6 stand on the baseline, row 7 holds descenders.
#[rustfmt::skip]
const FONT: [[u8; 8]; 95] = [
    // 0x20 ' '
    [0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000],
    // '!'
    [0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00000, 0b00100, 0b00000],
    // '"'
    [0b01010, 0b01010, 0b01010, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000],
    // '#'
    [0b01010, 0b01010, 0b11111, 0b01010, 0b11111, 0b01010, 0b01010, 0b00000],
    // '$'
    [0b00100, 0b01111, 0b10100, 0b01110, 0b00101, 0b11110, 0b00100, 0b00000],
    // '%'
    [0b11000, 0b11001, 0b00010, 0b00100, 0b01000, 0b10011, 0b00011, 0b00000],
    // '&'
    [0b01100, 0b10010, 0b10100, 0b01000, 0b10101, 0b10010, 0b01101, 0b00000],
    // '\''
    [0b00100, 0b00100, 0b01000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000],
    // '('
    [0b00010, 0b00100, 0b01000, 0b01000, 0b01000, 0b00100, 0b00010, 0b00000],
    // ')'
    [0b01000, 0b00100, 0b00010, 0b00010, 0b00010, 0b00100, 0b01000, 0b00000],
    // '*'
    [0b00000, 0b00100, 0b10101, 0b01110, 0b10101, 0b00100, 0b00000, 0b00000],
    // '+'
    [0b00000, 0b00100, 0b00100, 0b11111, 0b00100, 0b00100, 0b00000, 0b00000],
    // ','
    [0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b01100, 0b00100, 0b01000],
    // '-'
    [0b00000, 0b00000, 0b00000, 0b11111, 0b00000, 0b00000, 0b00000, 0b00000],
    // '.'
    [0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b01100, 0b01100, 0b00000],
    // '/'
    [0b00000, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b00000, 0b00000],
    // '0'
    [0b01110, 0b10001, 0b10011, 0b10101, 0b11001, 0b10001, 0b01110, 0b00000],
    // '1'
    [0b00100, 0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110, 0b00000],
    // '2'
    [0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b01000, 0b11111, 0b00000],
    // '3'
    [0b11111, 0b00010, 0b00100, 0b00010, 0b00001, 0b10001, 0b01110, 0b00000],
    // '4'
    [0b00010, 0b00110, 0b01010, 0b10010, 0b11111, 0b00010, 0b00010, 0b00000],
    // '5'
    [0b11111, 0b10000, 0b11110, 0b00001, 0b00001, 0b10001, 0b01110, 0b00000],
    // '6'
    [0b00110, 0b01000, 0b10000, 0b11110, 0b10001, 0b10001, 0b01110, 0b00000],
    // '7'
    [0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b01000, 0b01000, 0b00000],
    // '8'
    [0b01110, 0b10001, 0b10001, 0b01110, 0b10001, 0b10001, 0b01110, 0b00000],
    // '9'
    [0b01110, 0b10001, 0b10001, 0b01111, 0b00001, 0b00010, 0b01100, 0b00000],
    // ':'
    [0b00000, 0b01100, 0b01100, 0b00000, 0b01100, 0b01100, 0b00000, 0b00000],
    // ';'
    [0b00000, 0b01100, 0b01100, 0b00000, 0b01100, 0b00100, 0b01000, 0b00000],
    // '<'
    [0b00010, 0b00100, 0b01000, 0b10000, 0b01000, 0b00100, 0b00010, 0b00000],
    // '='
    [0b00000, 0b00000, 0b11111, 0b00000, 0b11111, 0b00000, 0b00000, 0b00000],
    // '>'
    [0b01000, 0b00100, 0b00010, 0b00001, 0b00010, 0b00100, 0b01000, 0b00000],
    // '?'
    [0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b00000, 0b00100, 0b00000],
    // '@'
    [0b01110, 0b10001, 0b00001, 0b01101, 0b10101, 0b10101, 0b01110, 0b00000],
    // 'A'
    [0b01110, 0b10001, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b00000],
    // 'B'
    [0b11110, 0b10001, 0b10001, 0b11110, 0b10001, 0b10001, 0b11110, 0b00000],
    // 'C'
    [0b01110, 0b10001, 0b10000, 0b10000, 0b10000, 0b10001, 0b01110, 0b00000],
    // 'D'
    [0b11100, 0b10010, 0b10001, 0b10001, 0b10001, 0b10010, 0b11100, 0b00000],
    // 'E'
    [0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b11111, 0b00000],
    // 'F'
    [0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b10000, 0b00000],
    // 'G'
    [0b01110, 0b10001, 0b10000, 0b10111, 0b10001, 0b10001, 0b01111, 0b00000],
    // 'H'
    [0b10001, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001, 0b00000],
    // 'I'
    [0b01110, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110, 0b00000],
    // 'J'
    [0b00111, 0b00010, 0b00010, 0b00010, 0b00010, 0b10010, 0b01100, 0b00000],
    // 'K'
    [0b10001, 0b10010, 0b10100, 0b11000, 0b10100, 0b10010, 0b10001, 0b00000],
    // 'L'
    [0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b11111, 0b00000],
    // 'M'
    [0b10001, 0b11011, 0b10101, 0b10101, 0b10001, 0b10001, 0b10001, 0b00000],
    // 'N'
    [0b10001, 0b10001, 0b11001, 0b10101, 0b10011, 0b10001, 0b10001, 0b00000],
    // 'O'
    [0b01110, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110, 0b00000],
    // 'P'
    [0b11110, 0b10001, 0b10001, 0b11110, 0b10000, 0b10000, 0b10000, 0b00000],
    // 'Q'
    [0b01110, 0b10001, 0b10001, 0b10001, 0b10101, 0b10010, 0b01101, 0b00000],
    // 'R'
    [0b11110, 0b10001, 0b10001, 0b11110, 0b10100, 0b10010, 0b10001, 0b00000],
    // 'S'
    [0b01111, 0b10000, 0b10000, 0b01110, 0b00001, 0b00001, 0b11110, 0b00000],
    // 'T'
    [0b11111, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00000],
    // 'U'
    [0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110, 0b00000],
    // 'V'
    [0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01010, 0b00100, 0b00000],
    // 'W'
    [0b10001, 0b10001, 0b10001, 0b10101, 0b10101, 0b10101, 0b01010, 0b00000],
    // 'X'
    [0b10001, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001, 0b10001, 0b00000],
    // 'Y'
    [0b10001, 0b10001, 0b01010, 0b00100, 0b00100, 0b00100, 0b00100, 0b00000],
    // 'Z'
    [0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b11111, 0b00000],
    // '['
    [0b01110, 0b01000, 0b01000, 0b01000, 0b01000, 0b01000, 0b01110, 0b00000],
    // '\\'
    [0b00000, 0b10000, 0b01000, 0b00100, 0b00010, 0b00001, 0b00000, 0b00000],
    // ']'
    [0b01110, 0b00010, 0b00010, 0b00010, 0b00010, 0b00010, 0b01110, 0b00000],
    // '^'
    [0b00100, 0b01010, 0b10001, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000],
    // '_'
    [0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b11111],
    // '`'
    [0b01000, 0b00100, 0b00010, 0b00000, 0b00000, 0b00000, 0b00000, 0b00000],
    // 'a'
    [0b00000, 0b00000, 0b01110, 0b00001, 0b01111, 0b10001, 0b01111, 0b00000],
    // 'b'
    [0b10000, 0b10000, 0b10110, 0b11001, 0b10001, 0b10001, 0b11110, 0b00000],
    // 'c'
    [0b00000, 0b00000, 0b01110, 0b10000, 0b10000, 0b10001, 0b01110, 0b00000],
    // 'd'
    [0b00001, 0b00001, 0b01101, 0b10011, 0b10001, 0b10001, 0b01111, 0b00000],
    // 'e'
    [0b00000, 0b00000, 0b01110, 0b10001, 0b11111, 0b10000, 0b01110, 0b00000],
    // 'f'
    [0b00110, 0b01001, 0b01000, 0b11100, 0b01000, 0b01000, 0b01000, 0b00000],
    // 'g'
    [0b00000, 0b00000, 0b01111, 0b10001, 0b10001, 0b01111, 0b00001, 0b01110],
    // 'h'
    [0b10000, 0b10000, 0b10110, 0b11001, 0b10001, 0b10001, 0b10001, 0b00000],
    // 'i'
    [0b00100, 0b00000, 0b01100, 0b00100, 0b00100, 0b00100, 0b01110, 0b00000],
    // 'j'
    [0b00010, 0b00000, 0b00110, 0b00010, 0b00010, 0b00010, 0b10010, 0b01100],
    // 'k'
    [0b10000, 0b10000, 0b10010, 0b10100, 0b11000, 0b10100, 0b10010, 0b00000],
    // 'l'
    [0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110, 0b00000],
    // 'm'
    [0b00000, 0b00000, 0b11010, 0b10101, 0b10101, 0b10001, 0b10001, 0b00000],
    // 'n'
    [0b00000, 0b00000, 0b10110, 0b11001, 0b10001, 0b10001, 0b10001, 0b00000],
    // 'o'
    [0b00000, 0b00000, 0b01110, 0b10001, 0b10001, 0b10001, 0b01110, 0b00000],
    // 'p'
    [0b00000, 0b00000, 0b11110, 0b10001, 0b10001, 0b11110, 0b10000, 0b10000],
    // 'q'
    [0b00000, 0b00000, 0b01101, 0b10011, 0b10001, 0b01111, 0b00001, 0b00001],
    // 'r'
    [0b00000, 0b00000, 0b10110, 0b11001, 0b10000, 0b10000, 0b10000, 0b00000],
    // 's'
    [0b00000, 0b00000, 0b01111, 0b10000, 0b01110, 0b00001, 0b11110, 0b00000],
    // 't'
    [0b01000, 0b01000, 0b11100, 0b01000, 0b01000, 0b01001, 0b00110, 0b00000],
    // 'u'
    [0b00000, 0b00000, 0b10001, 0b10001, 0b10001, 0b10011, 0b01101, 0b00000],
    // 'v'
    [0b00000, 0b00000, 0b10001, 0b10001, 0b10001, 0b01010, 0b00100, 0b00000],
    // 'w'
    [0b00000, 0b00000, 0b10001, 0b10001, 0b10101, 0b10101, 0b01010, 0b00000],
    // 'x'
    [0b00000, 0b00000, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001, 0b00000],
    // 'y'
    [0b00000, 0b00000, 0b10001, 0b10001, 0b10001, 0b01111, 0b00001, 0b01110],
    // 'z'
    [0b00000, 0b00000, 0b11111, 0b00010, 0b00100, 0b01000, 0b11111, 0b00000],
    // '{'
    [0b00010, 0b00100, 0b00100, 0b01000, 0b00100, 0b00100, 0b00010, 0b00000],
    // '|'
    [0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00000],
    // '}'
    [0b01000, 0b00100, 0b00100, 0b00010, 0b00100, 0b00100, 0b01000, 0b00000],
    // '~'
    [0b00000, 0b00000, 0b01000, 0b10101, 0b00010, 0b00000, 0b00000, 0b00000],
];

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    const WHITE: Rgb = [255, 255, 255];
    const RED: Rgb = [255, 0, 0];

    /// The pixels of `canvas` that are not `WHITE`.
    fn painted(canvas: &Canvas) -> Vec<(i64, i64)> {
        let mut out = Vec::new();
        for y in 0..i64::from(canvas.height()) {
            for x in 0..i64::from(canvas.width()) {
                if canvas.pixel(x, y) != Some(WHITE) {
                    out.push((x, y));
                }
            }
        }
        out
    }

    /// Decodes `png` into (width, height, RGB8 bytes).
    pub(crate) fn decode(png: &[u8]) -> (u32, u32, Vec<u8>) {
        let decoder = png::Decoder::new(std::io::Cursor::new(png));
        let mut reader = decoder.read_info().expect("a PNG header");
        let mut buf = vec![0; reader.output_buffer_size().expect("a buffer size")];
        let info = reader.next_frame(&mut buf).expect("a PNG frame");
        assert_eq!(info.color_type, png::ColorType::Rgb);
        assert_eq!(info.bit_depth, png::BitDepth::Eight);
        buf.truncate(info.buffer_size());
        (info.width, info.height, buf)
    }

    #[test]
    fn the_png_decodes_to_the_canvas() {
        let mut canvas = Canvas::new(37, 21, WHITE);
        canvas.set(36, 20, RED);
        canvas.fill_rect(2, 3, 4, 5, [0, 0, 255]);
        let png = canvas.encode_png().unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let (width, height, bytes) = decode(&png);
        assert_eq!((width, height), (37, 21));
        assert_eq!(bytes, canvas.pixels());
        let last = bytes.len() - 3;
        assert_eq!(bytes[last..], RED);
        assert_eq!(bytes[..3], WHITE);
    }

    #[test]
    fn rectangles_fill_exactly_and_clip() {
        let mut canvas = Canvas::new(10, 10, WHITE);
        canvas.fill_rect(2, 3, 3, 2, RED);
        let expected: Vec<(i64, i64)> = (3..5).flat_map(|y| (2..5).map(move |x| (x, y))).collect();
        assert_eq!(painted(&canvas), expected);
        // Off the edges: clipped, no panic.
        canvas.fill_rect(-5, 8, 100, 100, RED);
        assert_eq!(canvas.pixel(0, 9), Some(RED));
        assert_eq!(canvas.pixel(9, 8), Some(RED));
        assert_eq!(canvas.pixel(9, 7), Some(WHITE));
        canvas.set(-1, 0, RED);
        canvas.set(10, 0, RED);
        assert_eq!(canvas.pixel(10, 0), None);
        assert_eq!(canvas.pixel(0, 0), Some(WHITE));
    }

    #[test]
    fn lines_land_on_the_expected_pixels() {
        let mut canvas = Canvas::new(12, 12, WHITE);
        canvas.line(2, 3, 8, 3, 1, RED);
        assert_eq!(
            painted(&canvas),
            (2..=8).map(|x| (x, 3)).collect::<Vec<_>>()
        );

        let mut canvas = Canvas::new(12, 12, WHITE);
        canvas.line(5, 5, 0, 0, 1, RED);
        assert_eq!(
            painted(&canvas),
            (0..=5).map(|i| (i, i)).collect::<Vec<_>>()
        );

        // A shallow slope: one pixel per column, rising in steps.
        let mut canvas = Canvas::new(12, 12, WHITE);
        canvas.line(0, 0, 10, 2, 1, RED);
        let pixels = painted(&canvas);
        assert_eq!(pixels.len(), 11, "{pixels:?}");
        assert!(pixels.contains(&(0, 0)) && pixels.contains(&(10, 2)));
        assert!(pixels.contains(&(5, 1)), "{pixels:?}");

        // 2 px: a horizontal line gains the row below, a vertical one the column to the right.
        let mut canvas = Canvas::new(12, 12, WHITE);
        canvas.line(1, 4, 3, 4, 2, RED);
        assert_eq!(
            painted(&canvas),
            vec![(1, 4), (2, 4), (3, 4), (1, 5), (2, 5), (3, 5)]
        );
        let mut canvas = Canvas::new(12, 12, WHITE);
        canvas.line(6, 9, 6, 7, 2, RED);
        assert_eq!(
            painted(&canvas),
            vec![(6, 7), (7, 7), (6, 8), (7, 8), (6, 9), (7, 9)]
        );
    }

    #[test]
    fn a_glyph_stays_inside_its_cell() {
        for (c, scale) in [('A', 1), ('g', 2), ('W', 3), ('|', 2)] {
            let mut canvas = Canvas::new(60, 60, WHITE);
            let (x, y) = (10, 12);
            let width = canvas.text(x, y, &c.to_string(), scale, RED);
            assert_eq!(width, GLYPH_WIDTH * scale);
            let s = i64::from(scale);
            let cell_x = x..x + i64::from(GLYPH_WIDTH) * s;
            let cell_y = y..y + i64::from(GLYPH_HEIGHT) * s;
            let pixels = painted(&canvas);
            assert!(!pixels.is_empty(), "{c:?} drew nothing");
            for (px, py) in &pixels {
                assert!(
                    cell_x.contains(px) && cell_y.contains(py),
                    "{c:?} at scale {scale} painted ({px}, {py}) outside its cell"
                );
                assert_eq!(canvas.pixel(*px, *py), Some(RED));
            }
            // Scaled font pixels are whole squares: the painted count is a multiple of s².
            assert_eq!(pixels.len() as i64 % (s * s), 0);
        }
        // 'A''s top row is its apex bar, columns 1..=3.
        let mut canvas = Canvas::new(20, 20, WHITE);
        canvas.text(0, 0, "A", 1, RED);
        let top: Vec<_> = painted(&canvas).into_iter().filter(|p| p.1 == 0).collect();
        assert_eq!(top, vec![(1, 0), (2, 0), (3, 0)]);
    }

    #[test]
    fn text_advances_one_cell_per_character() {
        let mut canvas = Canvas::new(40, 10, WHITE);
        assert_eq!(canvas.text(0, 0, "ii", 1, RED), 11);
        // The second 'i' is the first shifted by one advance.
        for y in 0..8 {
            for x in 0..5 {
                assert_eq!(canvas.pixel(x, y), canvas.pixel(x + 6, y), "({x}, {y})");
            }
        }
        assert_eq!(text_width("", 3), 0);
        assert_eq!(text_width("abc", 2), 34);
        // Not printable ASCII: drawn as '?'.
        assert_eq!(glyph('é'), glyph('?'));
    }

    #[test]
    fn the_font_is_five_columns_wide_and_every_glyph_differs() {
        for (i, rows) in FONT.iter().enumerate() {
            let c = char::from(0x20 + i as u8);
            assert!(rows.iter().all(|r| *r < 0b100000), "{c:?} is wider than 5");
            assert_eq!(rows.iter().any(|r| *r != 0), c != ' ', "{c:?}");
            for (j, other) in FONT.iter().enumerate().skip(i + 1) {
                assert_ne!(
                    rows,
                    other,
                    "{c:?} and {:?} look alike",
                    char::from(0x20 + j as u8)
                );
            }
        }
        // Only descenders use the row below the baseline.
        let below: String = FONT
            .iter()
            .enumerate()
            .filter(|(_, rows)| rows[7] != 0)
            .map(|(i, _)| char::from(0x20 + i as u8))
            .collect();
        assert_eq!(below, ",_gjpqy");
    }
}
