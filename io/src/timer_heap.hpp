// timer_heap.hpp — a binary min-heap of timer operations on their deadline: the one timer queue
// of every backend (the reactor's, for epoll, kqueue and io_uring runtimes; the IOCP backend's).
// Not thread-safe: its owner guards it. Each op keeps its position in heap_index, so a
// cancelled timer leaves in O(log n).
#pragma once

#include <taskport/io/detail/operation.hpp>

#include <cstddef>
#include <new>
#include <utility>
#include <vector>

namespace taskport::io::detail {

class timer_heap {
public:
    // False (and nothing changed) when out of memory.
    bool push(operation* op) noexcept {
        try {
            heap_.push_back(op);
        } catch (const std::bad_alloc&) {
            return false;
        }
        op->heap_index = heap_.size() - 1;
        up(op->heap_index);
        return true;
    }
    operation* top() const noexcept { return heap_.empty() ? nullptr : heap_.front(); }
    operation* pop() noexcept {
        if (heap_.empty()) return nullptr;
        operation* op = heap_.front();
        remove_at(0);
        return op;
    }
    void remove(operation* op) noexcept { remove_at(op->heap_index); }
    bool empty() const noexcept { return heap_.empty(); }
    std::size_t size() const noexcept { return heap_.size(); }

private:
    void remove_at(std::size_t i) noexcept {
        std::swap(heap_[i], heap_.back());
        heap_[i]->heap_index = i;
        heap_.pop_back();
        if (i < heap_.size()) {
            down(i);
            up(i);
        }
    }
    void up(std::size_t i) noexcept {
        while (i > 0) {
            std::size_t p = (i - 1) / 2;
            if (!(heap_[i]->deadline < heap_[p]->deadline)) break;
            swap_at(i, p);
            i = p;
        }
    }
    void down(std::size_t i) noexcept {
        const std::size_t n = heap_.size();
        for (;;) {
            std::size_t l = 2 * i + 1, r = l + 1, m = i;
            if (l < n && heap_[l]->deadline < heap_[m]->deadline) m = l;
            if (r < n && heap_[r]->deadline < heap_[m]->deadline) m = r;
            if (m == i) break;
            swap_at(i, m);
            i = m;
        }
    }
    void swap_at(std::size_t a, std::size_t b) noexcept {
        std::swap(heap_[a], heap_[b]);
        heap_[a]->heap_index = a;
        heap_[b]->heap_index = b;
    }

    std::vector<operation*> heap_;
};

}  // namespace taskport::io::detail
