//! What a gateway client sends: the same one-message turn through chat completions
//! (`/v1/chat/completions`, Bearer key) or the Messages API (`/v1/messages`, `x-api-key`,
//! `anthropic-version`), with an optional PNG attached (an `image_url` data URL, or an `image`
//! block of base64 source). The body is built once per run, so both APIs cost the client the
//! same: a copy of a prepared buffer.

use base64::Engine;
use clap::ValueEnum;
use serde_json::{Value, json};

/// The gateway API a run drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Api {
    /// OpenAI's chat completions.
    Chat,
    /// Anthropic's Messages API.
    Messages,
}

/// The `max_tokens` a Messages API request carries (required by the API).
const MAX_TOKENS: u64 = 4096;

/// The request body of a one-message turn: `prompt`, then `image` (base64 PNG) when given.
pub(crate) fn body(
    api: Api,
    model: &str,
    prompt: &str,
    stream: bool,
    image: Option<&str>,
) -> Value {
    let content = match (api, image) {
        (_, None) => json!(prompt),
        (Api::Chat, Some(data)) => json!([
            {"type": "text", "text": prompt},
            {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{data}")}},
        ]),
        (Api::Messages, Some(data)) => json!([
            {"type": "text", "text": prompt},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}},
        ]),
    };
    let messages = json!([{"role": "user", "content": content}]);
    match api {
        Api::Chat => json!({"model": model, "stream": stream, "messages": messages}),
        Api::Messages => json!({
            "model": model, "max_tokens": MAX_TOKENS, "stream": stream, "messages": messages,
        }),
    }
}

/// A PNG of random RGB pixels whose base64 is about `kib` KiB (random pixels do not compress,
/// so the file is as large as its pixels), as base64.
pub(crate) fn png_base64(kib: usize) -> String {
    const WIDTH: usize = 128;
    let target = kib * 1024 * 3 / 4;
    let row = 1 + 3 * WIDTH;
    let height = (target.saturating_sub(64) / row).max(1);
    let mut rng = fastrand::Rng::with_seed(64);
    let mut pixels = Vec::with_capacity(row * height);
    for _ in 0..height {
        pixels.push(0); // filter: none
        pixels.extend((0..3 * WIDTH).map(|_| rng.u8(..)));
    }
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut header = Vec::with_capacity(13);
    header.extend((WIDTH as u32).to_be_bytes());
    header.extend((height as u32).to_be_bytes());
    header.extend([8, 2, 0, 0, 0]); // 8-bit RGB, no interlace
    chunk(&mut png, b"IHDR", &header);
    chunk(&mut png, b"IDAT", &zlib_stored(&pixels));
    chunk(&mut png, b"IEND", &[]);
    base64::engine::general_purpose::STANDARD.encode(png)
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend((data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend(kind);
    out.extend(data);
    let crc = crc32fast::hash(&out[start..]);
    out.extend(crc.to_be_bytes());
}

/// `data` as a zlib stream of stored (uncompressed) deflate blocks.
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = data.chunks(65_535).collect();
    for (i, block) in blocks.iter().enumerate() {
        out.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        out.extend(len.to_le_bytes());
        out.extend((!len).to_le_bytes());
        out.extend(*block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    out.extend(((b << 16) | a).to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_png_is_about_the_size_asked_and_well_formed() {
        let b64 = png_base64(64);
        assert!(
            (60 * 1024..=64 * 1024).contains(&b64.len()),
            "{}",
            b64.len()
        );
        let png = base64::engine::general_purpose::STANDARD
            .decode(&b64)
            .unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert!(png.ends_with(&[0xae, 0x42, 0x60, 0x82]), "IEND's CRC");
    }

    #[test]
    fn bodies_carry_the_image_in_each_apis_shape() {
        let chat = body(Api::Chat, "sonnet", "hi", true, Some("AAAA"));
        assert_eq!(
            chat["messages"][0]["content"][1]["image_url"]["url"],
            "data:image/png;base64,AAAA"
        );
        assert!(chat.get("max_tokens").is_none());
        let messages = body(Api::Messages, "sonnet", "hi", true, None);
        assert_eq!(messages["messages"][0]["content"], "hi");
        assert_eq!(messages["max_tokens"], MAX_TOKENS);
    }
}
