import Foundation
import Synchronization

/// A fixed set of threads for blocking C work (decode, encode). libsndfile and LAME calls block
/// their thread for seconds; running them on Swift's cooperative pool would starve every other
/// task, so CPU stages hop here and `await` the result. The thread count is the CPU concurrency
/// (`--jobs`); threads get 4 MiB stacks (LAME wants more than 128 KiB).
public final class CPUPool: Sendable {
    private struct State {
        var queue: [@Sendable () -> Void] = []
        var head = 0
        var stopped = false
    }

    private let state = Mutex(State())
    private let condition = NSCondition()
    public let threads: Int

    public init(threads: Int) {
        self.threads = max(1, threads)
        for index in 0..<self.threads {
            let thread = Thread { [self] in self.loop() }
            thread.stackSize = 4 << 20
            thread.name = "callrec-cpu-\(index)"
            thread.start()
        }
    }

    /// Stops the threads once the queued work is done.
    public func shutdown() {
        condition.lock()
        state.withLock { $0.stopped = true }
        condition.broadcast()
        condition.unlock()
    }

    /// Runs `body` on one of the pool's threads and returns its result.
    public func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            condition.lock()
            state.withLock { $0.queue.append { continuation.resume(with: Result { try body() }) } }
            condition.signal()
            condition.unlock()
        }
    }

    private func loop() {
        while true {
            condition.lock()
            var work: (@Sendable () -> Void)?
            while true {
                let (next, stop): ((@Sendable () -> Void)?, Bool) = state.withLock { s in
                    if s.head < s.queue.count {
                        let w = s.queue[s.head]
                        s.head += 1
                        if s.head > 1024, s.head * 2 > s.queue.count {
                            s.queue.removeFirst(s.head)
                            s.head = 0
                        }
                        return (w, false)
                    }
                    return (nil, s.stopped)
                }
                if let next { work = next; break }
                if stop { condition.unlock(); return }
                condition.wait()
            }
            condition.unlock()
            work?()
        }
    }
}
