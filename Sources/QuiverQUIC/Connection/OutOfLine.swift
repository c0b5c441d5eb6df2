/// An optional value kept out of line: while it is `nil` the enclosing value pays one pointer
/// for it, not the value's size. For the connection's state that most connections never set
/// (a client's resumption ticket and deferred parameters, 0-RTT keys, the path before a
/// migration): a `QUICConnection` is allocated for every connection a server holds.
///
/// Every assignment stores a fresh box and nothing mutates a box in place, so copies of the
/// enclosing value never share a change.
@propertyWrapper
struct OutOfLine<Value> {
    private final class Box {
        let value: Value
        init(_ value: Value) { self.value = value }
    }

    private var box: Box?

    init(wrappedValue: Value?) { box = wrappedValue.map(Box.init) }

    var wrappedValue: Value? {
        get { box?.value }
        set { box = newValue.map(Box.init) }
    }
}
