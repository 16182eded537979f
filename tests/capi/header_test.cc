// replite.h compiles on its own as strict C++17 (-Wall -Wextra -pedantic
// -Werror), with C linkage, and links against libreplite.so.
#include "replite.h"

#include <cstdio>
#include <cstring>

int main() {
  replite_options* o = replite_options_create();
  char* err = nullptr;
  const int rc = replite_options_set(o, "worker-threads", "2", &err);
  replite_options_destroy(o);
  const bool ok = rc == REPLITE_OK && err == nullptr && std::strlen(replite_version()) > 0;
  std::printf("%s\n", ok ? "1 passed, 0 failed" : "0 passed, 1 failed");
  return ok ? 0 : 1;
}
