import Synchronization

/// A one-way switch shared between tasks: off until ``set()``.
final class Switch: Sendable {
    private let value = Atomic(false)

    var isSet: Bool { value.load(ordering: .acquiring) }

    func set() { value.store(true, ordering: .releasing) }
}
