/* Compiled by xbuild for every target and linked after everything else
 * whenever xbuild's zig wrapper links: the libatomic entry points that zig
 * 0.14's compiler-rt does not provide. zig's compiler-rt has every
 * __atomic_load/store/exchange/compare_exchange/fetch_* but not
 * __atomic_is_lock_free, which clang calls when it cannot fold the answer at
 * compile time: on i686 for 8-byte objects (their alignment is 4), as
 * OpenSSL's crypto/threads_pthread.c does. The answer follows LLVM's
 * compiler-rt: lock-free when the size is one the CPU handles atomically and
 * the object is aligned to it (a null pointer means natural alignment). */
#include <stddef.h>
#include <stdint.h>

#pragma redefine_extname xbuild_atomic_is_lock_free __atomic_is_lock_free

_Bool xbuild_atomic_is_lock_free(size_t size, const volatile void *ptr) {
  uintptr_t at = (uintptr_t)ptr;
  switch (size) {
  case 1:
    return __c11_atomic_is_lock_free(1);
  case 2:
    return (at & 1) == 0 && __c11_atomic_is_lock_free(2);
  case 4:
    return (at & 3) == 0 && __c11_atomic_is_lock_free(4);
  case 8:
    return (at & 7) == 0 && __c11_atomic_is_lock_free(8);
  case 16:
    return (at & 15) == 0 && __c11_atomic_is_lock_free(16);
  default:
    return 0;
  }
}
