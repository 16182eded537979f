// Whether this build's malloc is a sanitizer's (ASan, TSan) rather than
// the C library's: code that works with glibc's allocator itself (the slot
// slab, the arena trim) steps aside then. gcc defines __SANITIZE_*__;
// clang only answers __has_feature.
#pragma once

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define REPLITE_SANITIZER_MALLOC 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define REPLITE_SANITIZER_MALLOC 1
#endif
#endif
