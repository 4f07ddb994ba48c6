// shard.hpp — `--shard I/N` for taskport-hash and taskport-fetch: a deterministic split of one
// job across N machines (or N runs), each doing shard I.
//
// Invariant: every key (a file's path, a download's output name, a checksum list's name)
// belongs to exactly one shard, decided by the key's bytes alone: FNV-1a (64-bit) of the key,
// modulo N. The split depends on nothing else (not the machine, not the order of the input, not
// std::hash, which differs between standard libraries), so N runs over the same input do the
// whole job exactly once, and the union of their outputs equals one unsharded run's output.
// Shard numbers count from 0, as Kubernetes' JOB_COMPLETION_INDEX and a Slurm array `0-(N-1)`.
#pragma once

#include <charconv>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace samples {

struct shard {
    std::uint64_t index = 0;
    std::uint64_t count = 1;  // 1: no sharding, every key belongs

    // FNV-1a, 64-bit: stable across platforms and releases.
    static std::uint64_t key_hash(std::string_view key) noexcept {
        std::uint64_t h = 14695981039346656037ull;
        for (unsigned char c : key) {
            h ^= c;
            h *= 1099511628211ull;
        }
        return h;
    }

    bool contains(std::string_view key) const noexcept {
        return count == 1 || key_hash(key) % count == index;
    }

    // "I/N" with 0 <= I < N; throws std::invalid_argument naming what is wrong.
    static shard parse(std::string_view text) {
        const std::size_t slash = text.find('/');
        const auto number = [&](std::string_view part, const char* what) {
            std::uint64_t v = 0;
            const auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), v);
            if (part.empty() || ec != std::errc{} || end != part.data() + part.size())
                throw std::invalid_argument("--shard '" + std::string(text) + "': " + what +
                                            " is not a whole number (expected I/N, e.g. 0/4)");
            return v;
        };
        if (slash == std::string_view::npos)
            throw std::invalid_argument("--shard '" + std::string(text) + "': expected I/N, e.g. 0/4");
        shard s;
        s.index = number(text.substr(0, slash), "I");
        s.count = number(text.substr(slash + 1), "N");
        if (s.count == 0)
            throw std::invalid_argument("--shard '" + std::string(text) + "': N must be at least 1");
        if (s.index >= s.count)
            throw std::invalid_argument("--shard '" + std::string(text) + "': I must be below N (shards count from 0: 0/" +
                                        std::to_string(s.count) + " to " + std::to_string(s.count - 1) + "/" +
                                        std::to_string(s.count) + ")");
        return s;
    }

    // The tools' --shard option: "" is no sharding; a bad value is reported on stderr as
    // "PROG: --shard ...: why" and gives nullopt (the tools then exit 2).
    static std::optional<shard> from_option(const std::string& text, const char* prog) {
        if (text.empty()) return shard{};
        try {
            return parse(text);
        } catch (const std::invalid_argument& e) {
            std::fprintf(stderr, "%s: %s\n", prog, e.what());
            return std::nullopt;
        }
    }
};

}  // namespace samples
