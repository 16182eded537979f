// REPLITE_EXPORT marks what libreplite.so exports: the C ABI and the public
// C++ API. Everything else is built with hidden visibility.
#pragma once

#if defined(REPLITE_BUILDING)
#define REPLITE_EXPORT __attribute__((visibility("default")))
#else
#define REPLITE_EXPORT
#endif
