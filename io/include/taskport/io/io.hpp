// taskport/io/io.hpp — all of taskport's I/O.
#pragma once

#include <taskport/io/endpoint.hpp>
#include <taskport/io/file.hpp>
#include <taskport/io/process.hpp>
#include <taskport/io/resolve.hpp>
#include <taskport/io/signal.hpp>
#include <taskport/io/tcp.hpp>
#include <taskport/io/timer.hpp>
#include <taskport/io/udp.hpp>
#include <taskport/io/unix.hpp>
