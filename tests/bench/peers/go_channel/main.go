// go_channel — the Go peer of tests/bench/bench_channel.cpp: n ints from p producer goroutines
// to c consumer goroutines through one channel, buffered at -cap. Go has no unbounded channel:
// for -cap 0 the channel is buffered for all n values, so it never fills (the fastest stand-in,
// faster than the goroutine-and-slice relay Go programs write for one). Producer k sends k,
// k+p, k+2p, ... below n; the producers' driver closes the channel when all are done;
// consumers range over it. GOMAXPROCS is Go's default (the
// hardware threads). Prints one line: "<transfer ms> <process CPU ms during it> <sum>", the
// sum being that of every value received (bench_channel checks it is n(n-1)/2).
//
//	go build -o go_channel main.go && ./go_channel -p 4 -c 1 -cap 1024 -n 1000000
package main

import (
	"flag"
	"fmt"
	"sync"
	"syscall"
	"time"
)

func cpuMs() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e6
}

func main() {
	p := flag.Int("p", 1, "producers")
	c := flag.Int("c", 1, "consumers")
	capacity := flag.Int("cap", 1024, "channel capacity (0: unbounded)")
	n := flag.Int("n", 1000000, "values to move")
	flag.Parse()

	c0 := cpuMs()
	t0 := time.Now()
	size := *capacity
	if size == 0 {
		size = *n // never full: the strongest stand-in for an unbounded channel
	}
	ch := make(chan int, size)
	var send chan<- int = ch
	var recv <-chan int = ch
	sums := make([]int64, *c*8) // 64 bytes apart
	var cw sync.WaitGroup
	for i := 0; i < *c; i++ {
		cw.Add(1)
		go func(i int) {
			defer cw.Done()
			var s int64
			for v := range recv {
				s += int64(v)
			}
			sums[i*8] = s
		}(i)
	}
	var pw sync.WaitGroup
	for k := 0; k < *p; k++ {
		pw.Add(1)
		go func(k int) {
			defer pw.Done()
			for i := k; i < *n; i += *p {
				send <- i
			}
		}(k)
	}
	pw.Wait()
	close(send)
	cw.Wait()
	ms := float64(time.Since(t0).Nanoseconds()) / 1e6
	cpu := cpuMs() - c0
	var sum int64
	for i := 0; i < *c; i++ {
		sum += sums[i*8]
	}
	fmt.Printf("%.3f %.3f %d\n", ms, cpu, sum)
}
