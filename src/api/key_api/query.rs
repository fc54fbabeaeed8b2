//! Query parameters of the listing routes: pages and dates, each refused with a 400 that
//! names it (axum's own `Query` rejection is plain text, not an OpenAI error).

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate};

use crate::error::ApiError;

/// The largest page.
pub(super) const MAX_PAGE_SIZE: u32 = 1000;

/// A 1-based page and its size (`size_param` is `size` on `/key/list`, `page_size` on
/// `/spend/logs`).
pub(super) fn page(
    q: &HashMap<String, String>,
    size_param: &str,
    default_size: u32,
) -> Result<(u32, u32), ApiError> {
    let number = |name: &str, default: u32, max: u32| -> Result<u32, ApiError> {
        match q.get(name) {
            None => Ok(default),
            Some(v) => match v.trim().parse::<u32>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => Err(ApiError::bad(
                    name,
                    format!("`{name}` must be a whole number from 1 to {max}"),
                )),
            },
        }
    };
    Ok((
        number("page", 1, u32::MAX / 2)?,
        number(size_param, default_size, MAX_PAGE_SIZE)?,
    ))
}

/// Pages needed for `total` items.
pub(super) fn total_pages(total: i64, size: u32) -> i64 {
    (total + i64::from(size) - 1) / i64::from(size)
}

/// A date filter: `YYYY-MM-DD` (UTC) or RFC 3339. A plain date as an end means the end of
/// that day, so `start_date=end_date=2026-11-25` is the whole day.
pub(super) fn date(
    q: &HashMap<String, String>,
    name: &str,
    is_end: bool,
) -> Result<Option<i64>, ApiError> {
    let Some(v) = q.get(name).map(|v| v.trim()) else {
        return Ok(None);
    };
    if let Ok(d) = NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        let day = if is_end { d.succ_opt().unwrap_or(d) } else { d };
        let t = day.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp());
        return Ok(t);
    }
    DateTime::parse_from_rfc3339(v)
        .map(|t| Some(t.timestamp()))
        .map_err(|_| {
            ApiError::bad(
                name,
                format!("`{name}` must be a date (2026-11-25) or an RFC 3339 time"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn pages_and_dates_parse_or_name_the_parameter() {
        assert_eq!(page(&q(&[]), "size", 100).unwrap(), (1, 100));
        assert_eq!(
            page(&q(&[("page", "3"), ("size", "7")]), "size", 100).unwrap(),
            (3, 7)
        );
        for bad in [("page", "0"), ("size", "1001"), ("size", "x")] {
            let e = page(&q(&[bad]), "size", 100).unwrap_err().to_string();
            assert!(e.contains(bad.0), "{e}");
        }
        assert_eq!(total_pages(0, 10), 0);
        assert_eq!(total_pages(21, 10), 3);
        let day = q(&[("start_date", "2026-11-25"), ("end_date", "2026-11-25")]);
        let start = date(&day, "start_date", false).unwrap().unwrap();
        let end = date(&day, "end_date", true).unwrap().unwrap();
        assert_eq!(end - start, 86_400);
        assert_eq!(crate::keys::rfc3339(start), "2026-11-25T00:00:00Z");
        let t = q(&[("end_date", "2026-11-25T12:00:00Z")]);
        assert_eq!(date(&t, "end_date", true).unwrap(), Some(start + 43_200));
        let e = date(&q(&[("start_date", "yesterday")]), "start_date", false).unwrap_err();
        assert!(e.to_string().contains("start_date"));
    }
}
