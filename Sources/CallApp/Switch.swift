import Synchronization

/// A one-way switch shared between tasks: off until ``set()``.
public final class Switch: Sendable {
    private let value = Atomic(false)

    public var isSet: Bool { value.load(ordering: .acquiring) }

    public init() {}

    public func set() { value.store(true, ordering: .releasing) }
}
