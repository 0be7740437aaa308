#include "src/sinks/postgres/target_errors.h"

#include "src/pgclient/pg_connection.h"

namespace pgfanout {

Error TargetError(const Error& error, std::string_view context) {
  if (error.kind != ErrorKind::kProtocol) return error.Wrap(context);  // kept as it came
  const std::string state = SqlStateOf(error);
  ErrorKind kind = ErrorKind::kSink;
  if (state.size() == 5) {
    std::string_view cls = std::string_view(state).substr(0, 2);
    if (cls == "08" || state.starts_with("57P") || state == "53300") {
      kind = ErrorKind::kConnection;
    } else if (cls == "21" || cls == "22" || cls == "23" || cls == "2B" || cls == "42" ||
               cls == "44" || cls == "0A" || cls == "54") {
      kind = ErrorKind::kMismatch;
    }
  }
  return Error{kind, std::string(context) + ": " + error.message};
}

}  // namespace pgfanout
