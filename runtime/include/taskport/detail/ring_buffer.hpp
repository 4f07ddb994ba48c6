// taskport/detail/ring_buffer.hpp — the FIFO a channel keeps its values in.
//
// One contiguous array used as a circle: push_back at head_ + size_, pop_front at head_. It grows
// by doubling (from 16) when full and never shrinks, so once a channel has held its peak number
// of values (a bounded one: at most its capacity), sending and receiving allocate nothing (a
// std::deque allocates and frees a block every few hundred bytes that pass through it).
// Invariant: the elements are data_[(head_ + i) % cap_] for i < size_, each constructed; the
// other slots are raw storage. Not thread-safe: its channel's lock guards it.
#pragma once

#include <cstddef>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

namespace taskport::detail {

/// A growing circular FIFO of T (a channel's buffer): no allocation once it has reached the
/// peak number of values held. Not thread-safe.
template <class T>
class ring_buffer {
public:
    ring_buffer() noexcept = default;
    ring_buffer(const ring_buffer&) = delete;
    ring_buffer& operator=(const ring_buffer&) = delete;
    ~ring_buffer() {
        while (size_) pop_front();
        deallocate(data_, cap_);
    }

    /// Whether it holds no value.
    bool empty() const noexcept { return size_ == 0; }
    /// How many values it holds.
    std::size_t size() const noexcept { return size_; }
    /// The oldest value. Precondition: !empty().
    T& front() noexcept { return data_[head_]; }

    /// Appends a T made from v. Throws what allocation or T's constructor throws, and then
    /// changes nothing.
    template <class U>
    void push_back(U&& v) {
        if (size_ == cap_) grow();
        std::size_t i = head_ + size_;
        if (i >= cap_) i -= cap_;
        ::new (static_cast<void*>(data_ + i)) T(std::forward<U>(v));
        ++size_;
    }
    /// Destroys the oldest value. Precondition: !empty().
    void pop_front() noexcept {
        data_[head_].~T();
        if (++head_ == cap_) head_ = 0;
        --size_;
    }

private:
    static T* allocate(std::size_t n) { return std::allocator<T>().allocate(n); }
    static void deallocate(T* p, std::size_t n) noexcept {
        if (p) std::allocator<T>().deallocate(p, n);
    }

    // Doubles the storage, the elements moved (copied where T's move may throw) to its start.
    void grow() {
        const std::size_t ncap = cap_ ? cap_ * 2 : 16;
        T* nd = allocate(ncap);
        std::size_t done = 0;
        try {
            for (; done < size_; ++done) {
                std::size_t i = head_ + done;
                if (i >= cap_) i -= cap_;
                ::new (static_cast<void*>(nd + done)) T(std::move_if_noexcept(data_[i]));
            }
        } catch (...) {
            for (std::size_t k = 0; k < done; ++k) nd[k].~T();
            deallocate(nd, ncap);
            throw;
        }
        for (std::size_t k = 0; k < size_; ++k) {
            std::size_t i = head_ + k;
            if (i >= cap_) i -= cap_;
            data_[i].~T();
        }
        deallocate(data_, cap_);
        data_ = nd;
        cap_ = ncap;
        head_ = 0;
    }

    T* data_ = nullptr;
    std::size_t cap_ = 0;   // slots allocated
    std::size_t head_ = 0;  // the oldest element's slot
    std::size_t size_ = 0;  // elements held
};

}  // namespace taskport::detail
