// taskport/taskport.hpp — everything public, in one include.
#pragma once

#include <taskport/future.hpp>
#include <taskport/io/io.hpp>
#include <taskport/runtime.hpp>
#include <taskport/task.hpp>
#include <taskport/task_group.hpp>
#include <taskport/when_all.hpp>
