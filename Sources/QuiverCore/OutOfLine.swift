/// An optional value kept out of line: while it is `nil` the enclosing value pays one pointer
/// for it, not the value's size. For per-connection state that most connections never set (a
/// client's resumption ticket and deferred parameters, 0-RTT keys, the path before a
/// migration): a server allocates its connection objects once per connection it holds.
///
/// Every assignment stores a fresh box and nothing mutates a box in place, so copies of the
/// enclosing value never share a change.
@propertyWrapper
public struct OutOfLine<Value> {
    @usableFromInline
    final class Box {
        @usableFromInline let value: Value
        @inlinable init(_ value: Value) { self.value = value }
    }

    @usableFromInline var box: Box?

    @inlinable
    public init(wrappedValue: Value?) { box = wrappedValue.map(Box.init) }

    @inlinable
    public var wrappedValue: Value? {
        get { box?.value }
        set { box = newValue.map(Box.init) }
    }
}

extension OutOfLine.Box: Sendable where Value: Sendable {}
extension OutOfLine: Sendable where Value: Sendable {}
