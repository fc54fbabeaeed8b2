//! The console's pages: one HTML shell per page, rendered here, with the console's own script
//! and style sheet (no inline script, nothing from elsewhere). The script fills the pages from
//! the JSON routes and sends every change with the page's CSRF token.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};

use super::Console;
use super::guard::Viewer;

const SCRIPT: &str = include_str!("assets/console.js");
const STYLE: &str = include_str!("assets/console.css");

/// The page shell. `csrf` is the session's token, or a sign-in token when signed out; every
/// other argument is the server's own text.
fn shell(
    title: &str,
    page: &str,
    csrf: &str,
    api_port: u16,
    signed_in: bool,
    body: &str,
) -> Html<String> {
    let nav = if signed_in {
        r#"<nav><a href="/" data-nav="home">Token exchange</a><a href="/admin" data-nav="admin">Keys &amp; pool</a><button type="button" id="sign-out" class="link">Sign out</button></nav>"#
    } else {
        ""
    };
    Html(format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf-token" content="{csrf}">
<meta name="api-port" content="{api_port}">
<title>{title} · claude-pool</title>
<link rel="stylesheet" href="/assets/console.css">
<script src="/assets/console.js" defer></script>
</head>
<body data-page="{page}">
<header class="top"><div class="brand"><span class="logo">◆</span> claude-pool <span class="sub">admin console</span></div>{nav}</header>
<main>
{body}
</main>
</body>
</html>
"#
    ))
}

const SIGN_IN: &str = r#"<section class="card narrow">
<h1>Sign in</h1>
<p class="muted">Enter the admin password (<code>ADMIN_PASSWORD</code>).</p>
<form id="sign-in" method="post" action="/admin/login">
<label>Password <input type="password" name="password" id="password" autocomplete="current-password" required autofocus></label>
<input type="hidden" name="csrf_token" id="sign-in-token">
<button type="submit" class="primary">Sign in</button>
<p class="error" id="sign-in-error" role="alert"></p>
</form>
</section>"#;

const EXCHANGE: &str = r#"<section class="card">
<h1>Exchange a Claude OAuth token for an API key</h1>
<p class="muted">Paste a token made by <code>claude setup-token</code> (<code>sk-ant-oat01-…</code>). The new key's requests run on workers signed in with that token. The token is sealed at rest and never shown again.</p>
<form id="exchange" autocomplete="off">
<label class="wide">Claude OAuth token <input type="password" name="oauth_token" id="oauth_token" placeholder="sk-ant-oat01-…" required spellcheck="false"></label>
<div class="grid">
<label>Alias <input name="key_alias" id="key_alias" placeholder="team-a"></label>
<label>Models <input name="models" id="models" placeholder="all (or: sonnet, haiku)"></label>
<label>Expires after <input name="duration" id="duration" placeholder="never (or: 30d, 12h)"></label>
<label>Budget (USD) <input name="max_budget" id="max_budget" type="number" min="0" step="0.01" placeholder="server default"></label>
<label>Requests per minute <input name="rpm_limit" id="rpm_limit" type="number" min="1" step="1" placeholder="server default"></label>
</div>
<button type="submit" class="primary">Create API key</button>
<p class="error" id="exchange-error" role="alert"></p>
</form>
</section>
<section class="card result" id="new-key-card" hidden>
<h2>New API key</h2>
<p class="warn">Copy it now: it is shown only once.</p>
<div class="key-row"><code id="new-key"></code><button type="button" id="copy-key" class="primary">Copy</button></div>
<p class="muted" id="new-key-meta"></p>
<pre class="snippet" id="new-key-usage"></pre>
</section>"#;

const ADMIN: &str = r#"<section class="card">
<div class="section-head"><h1>Pool</h1><span class="pill" id="pool-status">…</span><span class="muted" id="pool-updated"></span></div>
<div class="stats" id="pool-stats"></div>
<h2>Workers</h2>
<table class="data" id="workers"><thead><tr><th>#</th><th>State</th><th>Session</th><th>Credential</th><th>Profile</th><th>Turns</th><th>RSS</th><th>Age</th><th>PID</th></tr></thead><tbody></tbody></table>
<h2>Recent events</h2>
<ul class="events" id="events"></ul>
</section>
<section class="card">
<div class="section-head"><h1>Keys</h1><input type="search" id="key-filter" placeholder="Filter by alias"></div>
<table class="data" id="keys"><thead><tr><th>Alias</th><th>Key</th><th>Models</th><th>Spend / budget</th><th>Expires</th><th>Credential</th><th>Last used</th><th>Status</th><th></th></tr></thead><tbody></tbody></table>
<p class="error" id="keys-error" role="alert"></p>
</section>"#;

/// `GET /`: the sign-in form, or (signed in) the token exchange.
pub(super) async fn home(viewer: Viewer, State(c): State<Console>) -> Html<String> {
    match viewer.session {
        Some((_, csrf)) => shell("Token exchange", "home", &csrf, c.api_port, true, EXCHANGE),
        None => shell(
            "Sign in",
            "sign-in",
            &c.sessions.sign_in_token(),
            c.api_port,
            false,
            SIGN_IN,
        ),
    }
}

/// `GET /admin`: keys and the live pool (signed-out browsers go to the sign-in form).
pub(super) async fn admin(viewer: Viewer, State(c): State<Console>) -> Response {
    match viewer.session {
        Some((_, csrf)) => {
            shell("Keys & pool", "admin", &csrf, c.api_port, true, ADMIN).into_response()
        }
        None => Redirect::to("/").into_response(),
    }
}

/// `GET /assets/console.js`.
pub(super) async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

/// `GET /assets/console.css`.
pub(super) async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// Every path while the console is off (`auth.admin_password` empty).
pub(super) async fn disabled() -> Response {
    let body = r#"<section class="card narrow">
<h1>The admin console is off</h1>
<p>This server has no admin password. Set <code>ADMIN_PASSWORD</code> (or <code>auth.admin_password</code> in the config file; an argon2 hash from <code>claude-pool hash-password</code> works too) and restart the server.</p>
</section>"#;
    let page = shell("Console off", "off", "", 0, false, body);
    (StatusCode::SERVICE_UNAVAILABLE, page).into_response()
}
