#pragma once

namespace pgfanout {

// The page served at "/": the daemon's state, the slot, and per sink its position, lag and
// last error, with a chart of each sink's lag over the last hour. Plain HTML, its script
// (/lag.js) and style (/lag.css), no external resources (it must work on a host with no
// internet); served under kLagPageCsp, so nothing inline runs. The page holds no data: it
// polls /status and /lag.json every 5 s, with the bearer token from its URL's fragment
// (`/#token=…`) in an Authorization header.
const char* LagPageHtml();
const char* LagPageScript();
const char* LagPageStyle();

inline constexpr const char* kLagPageCsp =
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

}  // namespace pgfanout
