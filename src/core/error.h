#pragma once

#include <boost/outcome/result.hpp>
#include <boost/outcome/try.hpp>
#include <string>
#include <string_view>
#include <utility>

namespace pgfanout {

// What went wrong, coarse enough that one function (pipeline/retry_policy.h) can map
// a kind to a retry directive.
enum class ErrorKind {
  kInvalidArgument,  // bad input from a person: config, command line
  kDecode,           // bytes from the server that break the protocol
  kProtocol,         // the server did something the replication protocol forbids
  kConnection,       // a connection was lost or refused; usually worth a retry
  kStorage,          // RocksDB or the file system failed
  kSink,             // a sink refused or failed a write
  kNotFound,         // a thing asked for is not there (an LSN no longer in the log)
  kMismatch,         // the state dir and the server disagree (system id, slot)
  kCancelled,        // shutdown in progress
  kBusy,             // a shared slot (a backfill's) is taken: wait for it, not a failure
};

const char* ToString(ErrorKind kind);

// An error as a value. `message` is for people: it names what failed and the context
// (table, offset, LSN) and never carries a secret.
struct Error {
  ErrorKind kind = ErrorKind::kInvalidArgument;
  std::string message;

  // Prefixes context: Error{...}.Wrap("reading slot") -> "reading slot: <message>".
  Error Wrap(std::string_view context) const {
    return Error{kind, std::string(context) + ": " + message};
  }
};

template <class T>
using Result = boost::outcome_v2::result<T, Error, boost::outcome_v2::policy::terminate>;

inline Error MakeError(ErrorKind kind, std::string message) {
  return Error{kind, std::move(message)};
}

}  // namespace pgfanout

// PGF_TRY(Expr()) returns Expr()'s error from the calling function; it is one statement,
// so it may be the body of an unbraced if/for.
// PGF_TRY(auto x, Expr()) / PGF_TRY(existing_lvalue, Expr()) also take the value.
// The macro counts its arguments, so a one-argument call whose expression has a comma
// outside parentheses (a braced list) needs extra parentheses: PGF_TRY((f({a, b}))).
// Not a plain alias of BOOST_OUTCOME_TRY: Boost 1.74's two-argument form declares
// `auto&& x` itself, so `PGF_TRY(auto x, ...)` would not compile.
#define PGF_TRY(...)                                                                          \
  PGF_TRY_SELECT(__VA_ARGS__, PGF_TRY_ASSIGN, PGF_TRY_ASSIGN, PGF_TRY_ASSIGN, PGF_TRY_ASSIGN, \
                 PGF_TRY_ASSIGN, PGF_TRY_ASSIGN, PGF_TRY_ASSIGN, PGF_TRY_VOID, unused)        \
  (__VA_ARGS__)
#define PGF_TRY_SELECT(_1, _2, _3, _4, _5, _6, _7, _8, name, ...) name
#define PGF_TRY_GLUE2(a, b) a##b
#define PGF_TRY_GLUE(a, b) PGF_TRY_GLUE2(a, b)
#define PGF_TRY_VOID(expr) PGF_TRY_VOID_IMPL(PGF_TRY_GLUE(pgf_try_result_, __COUNTER__), expr)
#define PGF_TRY_VOID_IMPL(tmp, expr)                                             \
  do {                                                                           \
    auto&& tmp = (expr);                                                         \
    if (!tmp.has_value()) return static_cast<decltype(tmp)&&>(tmp).as_failure(); \
  } while (false)
#define PGF_TRY_ASSIGN(target, ...) \
  PGF_TRY_ASSIGN_IMPL(PGF_TRY_GLUE(pgf_try_result_, __COUNTER__), target, __VA_ARGS__)
#define PGF_TRY_ASSIGN_IMPL(tmp, target, ...)                                  \
  auto&& tmp = (__VA_ARGS__);                                                  \
  if (!tmp.has_value()) return static_cast<decltype(tmp)&&>(tmp).as_failure(); \
  target = static_cast<decltype(tmp)&&>(tmp).value()
