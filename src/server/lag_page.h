#pragma once

namespace pgfanout {

// The page served at "/": the daemon's state, the slot, and per sink its position, lag and
// last error, with a chart of each sink's lag over the last hour. Plain HTML and script, no
// external resources (it must work on a host with no internet); it polls /status and
// /lag.json every 5 s and passes its own ?access_token= on to them.
const char* LagPageHtml();

}  // namespace pgfanout
