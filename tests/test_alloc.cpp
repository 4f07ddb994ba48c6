// test_alloc.cpp — task memory (sched/src/alloc.cpp): blocks freed on another thread come back to
// the allocating thread through the block depot (sched/src/block_depot.hpp), and the depot is
// bounded: a chain that would pass its bound is refused and stays with its giver.
#include "block_depot.hpp"

#include <taskport/sched/executor.hpp>

#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>
#include <set>
#include <thread>
#include <vector>

using taskport::detail::allocate_task;
using taskport::detail::deallocate_task;

namespace {
using depot = taskport::detail::basic_block_depot<taskport::detail::std_atomics>;
using block = depot::block;

// Links blocks[first, first + n) into a chain.
void chain(std::vector<block>& blocks, std::size_t first, std::size_t n) {
    for (std::size_t i = first; i < first + n; ++i)
        blocks[i].next.store(i + 1 < first + n ? &blocks[i + 1] : nullptr);
}
}  // namespace

TEST_CASE("alloc: the block depot is bounded and hands every chain over whole") {
    std::vector<block> b(16);
    depot d(4);
    std::uint32_t n = 99;
    block* tail = &b[0];
    REQUIRE(d.take_all(n, tail) == nullptr);
    REQUIRE(n == 0);
    REQUIRE(tail == nullptr);
    chain(b, 0, 3);
    REQUIRE(d.put(&b[0], &b[2], 3));
    chain(b, 3, 2);
    REQUIRE_FALSE(d.put(&b[3], &b[4], 2));  // 3 + 2 > 4: refused, nothing taken
    chain(b, 5, 1);
    REQUIRE(d.put(&b[5], &b[5], 1));  // 4: fits
    block* got = d.take_all(n, tail);
    REQUIRE(n == 4);
    std::set<block*> seen;
    block* last = nullptr;
    for (block* x = got; x; x = x->next.load()) {
        REQUIRE(seen.insert(x).second);
        last = x;
    }
    REQUIRE(seen == std::set<block*>{&b[0], &b[1], &b[2], &b[5]});
    REQUIRE(last == tail);
    REQUIRE(d.take_all(n, tail) == nullptr);
    REQUIRE(d.put(&b[3], &b[4], 2));  // room again after the take
}

TEST_CASE("alloc: blocks freed on another thread are handed out again exactly once") {
    // A producer allocates, consumers free (an outside thread posting, workers running): the
    // consumers' full caches go to the depot in chains and the producer's next allocations take
    // them. (Which addresses come back says nothing here: the backend reuses them too.) Every
    // block live at once must be distinct and keep what was written into it.
    constexpr std::size_t n = 8192, size = 64;
    for (int round = 0; round < 4; ++round) {
        std::vector<void*> blocks(n);
        for (auto& p : blocks) p = allocate_task(size);
        std::thread a([&] {
            for (std::size_t i = 0; i < n; i += 2) deallocate_task(blocks[i], size);
        });
        std::thread b([&] {
            for (std::size_t i = 1; i < n; i += 2) deallocate_task(blocks[i], size);
        });
        a.join();
        b.join();
        for (std::size_t i = 0; i < n; ++i) {
            blocks[i] = allocate_task(size);
            std::memset(blocks[i], static_cast<int>(i & 0xff), size);
        }
        REQUIRE(std::set<void*>(blocks.begin(), blocks.end()).size() == n);  // none twice
        std::size_t bad = 0;
        for (std::size_t i = 0; i < n; ++i) {
            const auto* c = static_cast<const unsigned char*>(blocks[i]);
            for (std::size_t k = 0; k < size; ++k) bad += c[k] != (i & 0xff);
        }
        REQUIRE(bad == 0);
        for (void* p : blocks) deallocate_task(p, size);
    }
}
