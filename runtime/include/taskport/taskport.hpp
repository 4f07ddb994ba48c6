// taskport/taskport.hpp — everything public, in one include.
#pragma once

#include <taskport/async_event.hpp>
#include <taskport/async_mutex.hpp>
#include <taskport/async_scope.hpp>
#include <taskport/async_semaphore.hpp>
#include <taskport/barrier.hpp>
#include <taskport/channel.hpp>
#include <taskport/fork.hpp>
#include <taskport/future.hpp>
#include <taskport/io/io.hpp>
#include <taskport/latch.hpp>
#include <taskport/runtime.hpp>
#include <taskport/task.hpp>
#include <taskport/task_group.hpp>
#include <taskport/when_all.hpp>
