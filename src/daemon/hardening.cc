#include "src/daemon/hardening.h"

#include <sys/prctl.h>
#include <sys/stat.h>

namespace pgfanout {

void HardenProcess(bool allow_core_dumps) {
  ::umask(077);
  if (!allow_core_dumps) ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

}  // namespace pgfanout
