// Uninitialised arrays of trivial types; large ones (>= 4 MiB) are mapped on 2 MiB
// boundaries and offered transparent huge pages (Linux, madvise), faulted in by the
// allocating thread: one page fault per 2 MiB instead of per 4 KiB, none in the parallel
// loops that fill the array, and fewer TLB misses when a solver walks it at random.
// Allocation failure throws std::bad_alloc.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <new>
#include <type_traits>
#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace seg {

struct BigDeleter {
    void* base = nullptr;   // the mapping (len > 0), else memory from operator new[]
    size_t len = 0;
    void operator()(void* p) const noexcept {
#if defined(__linux__)
        if (len) { munmap(base, len); return; }
#endif
        ::operator delete[](p);
    }
};

template <class T>
using big_ptr = std::unique_ptr<T[], BigDeleter>;

template <class T>
big_ptr<T> big_array(size_t n) {
    static_assert(std::is_trivially_default_constructible<T>::value && std::is_trivially_destructible<T>::value,
                  "big_array holds trivial types only");
    if (n > std::numeric_limits<size_t>::max() / sizeof(T) - (size_t(4) << 20)) throw std::bad_alloc();
    const size_t bytes = n * sizeof(T);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    constexpr size_t kHuge = size_t(2) << 20;
    if (bytes >= 2 * kHuge) {
        const size_t len = bytes + kHuge;
        void* raw = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (raw == MAP_FAILED) throw std::bad_alloc();
        const uintptr_t aligned = (reinterpret_cast<uintptr_t>(raw) + kHuge - 1) & ~uintptr_t(kHuge - 1);
        madvise(reinterpret_cast<void*>(aligned), bytes, MADV_HUGEPAGE);   // a hint: failure is fine
        // Fault the huge pages in here, one thread: first writes from several OpenMP threads
        // at once faulted 20x slower than one thread on this project's VMs (18 MiB: 19 ms on 2
        // threads, 0.8 ms on one), and each huge page is committed whole at its first write anyway.
        for (size_t off = 0; off < bytes; off += kHuge) reinterpret_cast<volatile char*>(aligned)[off] = 0;
        return big_ptr<T>(reinterpret_cast<T*>(aligned), BigDeleter{raw, len});
    }
#endif
    return big_ptr<T>(static_cast<T*>(::operator new[](bytes > 0 ? bytes : 1)), BigDeleter{});
}

// A fixed-size array on big_array: assign(n, value) fills, resize_uninitialized(n) does not.
template <class T>
class BigVector {
public:
    void resize_uninitialized(size_t n) {
        p_ = big_array<T>(n);
        n_ = n;
    }
    void assign(size_t n, T value) {
        resize_uninitialized(n);
        std::fill(p_.get(), p_.get() + n, value);
    }
    T* data() { return p_.get(); }
    const T* data() const { return p_.get(); }
    size_t size() const { return n_; }
    T& operator[](size_t i) { return p_[i]; }
    const T& operator[](size_t i) const { return p_[i]; }

private:
    big_ptr<T> p_;
    size_t n_ = 0;
};

}  // namespace seg
