// Shared by the libFuzzer harnesses: FUZZ_CHECK(cond, what) aborts with a
// message when an invariant does not hold, so libFuzzer saves the input as
// a crash (crash-<sha1>) just like a sanitizer report.
#pragma once

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond, what)                                                                   \
  do {                                                                                           \
    if (!(cond)) {                                                                               \
      std::fprintf(stderr, "FUZZ INVARIANT FAILED at %s:%d: %s\n  (%s)\n", __FILE__, __LINE__, \
                   what, #cond);                                                                 \
      std::abort();                                                                              \
    }                                                                                            \
  } while (0)
