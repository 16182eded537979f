/* replite.h compiles on its own as strict C11 (-Wall -Wextra -pedantic
 * -Werror) and what it declares links against libreplite.so. */
#include "replite.h"

#include <stdio.h>
#include <string.h>

int main(void) {
  /* Take the address of a few functions so that each must resolve. */
  int (*set)(replite_options*, const char*, const char*, char**) = replite_options_set;
  int (*restore)(const char*, const char*, const char*, replite_progress_fn, void*, char**) = replite_restore;
  char* (*restore_json)(const char*, const char*, const char*, replite_progress_fn, void*, char**) =
      replite_restore_json;
  const char* v = replite_version();
  int ok = v != NULL && strlen(v) > 0 && set != NULL && restore != NULL && restore_json != NULL &&
           REPLITE_ERR_INTERNAL == -14;
  printf("%s\n", ok ? "1 passed, 0 failed" : "0 passed, 1 failed");
  return ok ? 0 : 1;
}
