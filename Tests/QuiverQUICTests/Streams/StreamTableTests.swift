import QuiverCore
import Testing

@_spi(Wire) @testable import QuiverQUIC

extension StreamsTests {
    @Suite struct StreamTableTests {
        /// Random inserts, updates and removals agree with a `Dictionary` at every step: the
        /// backward-shift deletion keeps every remaining stream findable.
        @Test func agreesWithADictionary() {
            var random = SplitMix64(seed: 7)
            var table = StreamTable<Int>()
            var model: [StreamID: Int] = [:]
            for step in 0..<20_000 {
                // Few distinct IDs, many collisions in small tables; of all four types.
                let id = StreamID(rawValue: random.next() % 96)
                switch random.next() % 4 {
                case 0, 1:
                    table[id] = step
                    model[id] = step
                case 2:
                    table[id] = nil
                    model[id] = nil
                default:
                    table.withValue(id) { $0 += 1 }
                    model[id]? += 1
                }
                #expect(table.count == model.count)
                if step % 97 == 0 {
                    for raw in UInt64(0)..<96 {
                        let id = StreamID(rawValue: raw)
                        let stored: Int? = table[id]
                        #expect(stored == model[id])
                    }
                    let keys = Set(table.keys)
                    #expect(keys == Set(model.keys))
                }
            }
        }

        @Test func consecutiveStreamsAndAbsentOnes() {
            var table = StreamTable<String>()
            let absent: String? = table[StreamID(rawValue: 0)]
            #expect(absent == nil)
            let changed: String?? = table.withValue(StreamID(rawValue: 0)) { $0 }
            #expect(changed == .none)
            for index in UInt64(0)..<1000 { table[StreamID(rawValue: index << 2)] = "\(index)" }
            #expect(table.count == 1000)
            let last: String? = table[StreamID(rawValue: 4 * 999)]
            #expect(last == "999")
            let other: String? = table[StreamID(rawValue: 1)]
            #expect(other == nil)
            for index in UInt64(0)..<1000 where index % 2 == 0 { table[StreamID(rawValue: index << 2)] = nil }
            #expect(table.count == 500)
            let expected = (0..<500).map { (index: Int) in StreamID(rawValue: UInt64(2 * index + 1) << 2) }
            #expect(table.keys.sorted() == expected)
        }
    }
}
