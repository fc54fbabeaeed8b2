//! Attachments as every API surface takes them: images and documents checked against what the
//! model API accepts (media types, valid base64, Anthropic's 5 MB image limit) and turned into
//! neutral content blocks. A bad attachment is a 400 naming the part; the bytes are never
//! decoded into memory beyond the check, and never copied.

use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use claude_pool_actors::content::{Block, Source};

use crate::error::ApiError;

/// Image media types the model takes.
pub const IMAGE_TYPES: [&str; 4] = ["image/jpeg", "image/png", "image/gif", "image/webp"];

/// Largest image, as base64 text (the model API's 5 MB limit applies to the base64 string).
pub const MAX_IMAGE_BASE64: usize = 5 * 1024 * 1024;

/// Largest document, as base64 text (the model API's 32 MB request limit bounds it anyway).
pub const MAX_DOCUMENT_BASE64: usize = 32 * 1024 * 1024;

/// An image given as base64 data of `media_type`.
pub fn image_base64(param: &str, media_type: &str, data: &str) -> Result<Block, ApiError> {
    let media_type = media_type.trim().to_ascii_lowercase();
    if !IMAGE_TYPES.contains(&media_type.as_str()) {
        return Err(ApiError::bad(
            param,
            format!(
                "unsupported image media type `{}`: use one of {}",
                clip(&media_type),
                IMAGE_TYPES.join(", ")
            ),
        ));
    }
    if data.len() > MAX_IMAGE_BASE64 {
        return Err(ApiError::bad(
            param,
            format!(
                "the image is {} bytes of base64, over the limit of {MAX_IMAGE_BASE64} (5 MB)",
                data.len()
            ),
        ));
    }
    check_base64(param, data)?;
    Ok(Block::Image(Source::Base64 {
        media_type,
        data: data.to_owned(),
    }))
}

/// An image at an `http(s)` URL (the model API fetches it).
pub fn image_url(param: &str, url: &str) -> Result<Block, ApiError> {
    check_url(param, url)?;
    Ok(Block::Image(Source::Url(url.to_owned())))
}

/// An image given as a `data:` URL or an `http(s)` URL (OpenAI's `image_url`).
pub fn image_from_url(param: &str, url: &str) -> Result<Block, ApiError> {
    match parse_data_url(url) {
        Some(Ok((media_type, data))) => image_base64(param, media_type, data),
        Some(Err(why)) => Err(ApiError::bad(param, why)),
        None => image_url(param, url),
    }
}

/// A document given as base64 data: a PDF stays base64; plain text is decoded into a text
/// document (the form the model API takes plain text in).
pub fn document_base64(
    param: &str,
    media_type: &str,
    data: &str,
    title: Option<String>,
) -> Result<Block, ApiError> {
    let media_type = media_type.trim().to_ascii_lowercase();
    if data.len() > MAX_DOCUMENT_BASE64 {
        return Err(ApiError::bad(
            param,
            format!(
                "the document is {} bytes of base64, over the limit of {MAX_DOCUMENT_BASE64}",
                data.len()
            ),
        ));
    }
    let source = match media_type.as_str() {
        "application/pdf" => {
            check_base64(param, data)?;
            Source::Base64 {
                media_type,
                data: data.to_owned(),
            }
        }
        "text/plain" => {
            let bytes = decode(param, data)?;
            let text = String::from_utf8(bytes)
                .map_err(|_| ApiError::bad(param, "the text/plain document is not UTF-8"))?;
            Source::Text(text)
        }
        other => {
            return Err(ApiError::bad(
                param,
                format!(
                    "unsupported document media type `{}`: use application/pdf or text/plain",
                    clip(other)
                ),
            ));
        }
    };
    Ok(Block::Document { source, title })
}

/// A document given as a `data:` URL (OpenAI's `file_data`); a bare base64 string is taken as
/// a PDF.
pub fn document_from_data(
    param: &str,
    file_data: &str,
    title: Option<String>,
) -> Result<Block, ApiError> {
    match parse_data_url(file_data) {
        Some(Ok((media_type, data))) => document_base64(param, media_type, data, title),
        Some(Err(why)) => Err(ApiError::bad(param, why)),
        None => document_base64(param, "application/pdf", file_data, title),
    }
}

/// A document at an `http(s)` URL (PDF; the model API fetches it).
pub fn document_url(param: &str, url: &str, title: Option<String>) -> Result<Block, ApiError> {
    check_url(param, url)?;
    Ok(Block::Document {
        source: Source::Url(url.to_owned()),
        title,
    })
}

/// A plain-text document.
pub fn document_text(text: &str, title: Option<String>) -> Block {
    Block::Document {
        source: Source::Text(text.to_owned()),
        title,
    }
}

/// `data:<media type>;base64,<data>` → (media type, data); `None` when it is not a `data:`
/// URL at all.
fn parse_data_url(url: &str) -> Option<Result<(&str, &str), String>> {
    let rest = url.strip_prefix("data:")?;
    let Some((head, data)) = rest.split_once(',') else {
        return Some(Err("a data URL needs a `,` before its data".into()));
    };
    let Some(media_type) = head.strip_suffix(";base64") else {
        return Some(Err(
            "only base64 data URLs are supported (`data:<media type>;base64,<data>`)".into(),
        ));
    };
    Some(Ok((media_type, data)))
}

fn check_url(param: &str, url: &str) -> Result<(), ApiError> {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") {
        Ok(())
    } else {
        Err(ApiError::bad(
            param,
            "an attachment URL must be an http(s) URL or a base64 data URL",
        ))
    }
}

/// Standard base64, padded or not; trailing bits are not checked (as lenient decoders do not).
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// True when `data` is valid base64. It is decoded a slice at a time into a small buffer, so
/// the bytes are never held.
pub fn is_base64(data: &str) -> bool {
    const CHUNK: usize = 4 * 1024;
    let mut buf = [0u8; CHUNK / 4 * 3];
    data.as_bytes()
        .chunks(CHUNK)
        .all(|chunk| BASE64.decode_slice(chunk, &mut buf).is_ok())
}

fn check_base64(param: &str, data: &str) -> Result<(), ApiError> {
    if data.is_empty() {
        return Err(ApiError::bad(param, "the attachment's data is empty"));
    }
    if !is_base64(data) {
        return Err(not_base64(param));
    }
    Ok(())
}

/// The bytes of a document kept decoded (plain text): decoded once, which is its check.
fn decode(param: &str, data: &str) -> Result<Vec<u8>, ApiError> {
    if data.is_empty() {
        return Err(ApiError::bad(param, "the attachment's data is empty"));
    }
    BASE64
        .decode(data.as_bytes())
        .map_err(|_| not_base64(param))
}

fn not_base64(param: &str) -> ApiError {
    ApiError::bad(param, "the attachment's data is not valid base64")
}

fn clip(s: &str) -> String {
    s.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

    fn message(e: ApiError) -> (String, String) {
        match e {
            ApiError::BadRequest { message, param } => (param.unwrap_or_default(), message),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn data_urls_become_base64_images_and_http_urls_url_sources() {
        let b = image_from_url("p", &format!("data:image/png;base64,{PNG}")).unwrap();
        assert_eq!(
            b,
            Block::Image(Source::Base64 {
                media_type: "image/png".into(),
                data: PNG.into()
            })
        );
        let b = image_from_url("p", "https://example.com/cat.jpg").unwrap();
        assert_eq!(
            b,
            Block::Image(Source::Url("https://example.com/cat.jpg".into()))
        );
    }

    #[test]
    fn bad_attachments_are_400s_naming_the_part() {
        let (param, m) = message(
            image_from_url("messages[0].content[1]", "data:image/png;base64,%%%").unwrap_err(),
        );
        assert_eq!(param, "messages[0].content[1]");
        assert!(m.contains("not valid base64"), "{m}");
        let (_, m) = message(image_base64("p", "image/tiff", PNG).unwrap_err());
        assert!(m.contains("image/tiff") && m.contains("image/webp"), "{m}");
        let (_, m) = message(image_from_url("p", "ftp://x/y.png").unwrap_err());
        assert!(m.contains("http(s)"), "{m}");
        let (_, m) = message(image_from_url("p", "data:image/png,abc").unwrap_err());
        assert!(m.contains("base64"), "{m}");
        let big = "A".repeat(MAX_IMAGE_BASE64 + 4);
        let (_, m) = message(image_base64("p", "image/png", &big).unwrap_err());
        assert!(m.contains("5 MB"), "{m}");
        let (_, m) = message(document_base64("p", "application/msword", "AAAA", None).unwrap_err());
        assert!(m.contains("application/pdf"), "{m}");
    }

    #[test]
    fn text_documents_are_decoded_and_pdfs_kept_as_base64() {
        let b =
            document_from_data("p", "data:text/plain;base64,aGVsbG8=", Some("t".into())).unwrap();
        assert_eq!(
            b,
            Block::Document {
                source: Source::Text("hello".into()),
                title: Some("t".into())
            }
        );
        let b = document_from_data("p", "JVBERi0xLjQ=", None).unwrap();
        assert!(
            matches!(b, Block::Document { source: Source::Base64 { ref media_type, .. }, .. } if media_type == "application/pdf")
        );
    }
}
