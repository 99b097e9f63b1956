/// The upload's multipart parser as one entry for fuzz/ (the libFuzzer harness, scripts/fuzz.sh):
/// the boundary from a `Content-Type`, the body fed in pieces as the network delivers it, each
/// part's header values parsed as ``RecordingReceiver`` parses them. Not for applications.
@_spi(Fuzzing)
public enum MultipartParsing {
    /// One part as the parser delivered it.
    public struct Part: Sendable, Hashable {
        /// Its header lines (names lowercased, values trimmed).
        public var headers: [String]
        /// Each header value split as `value; a=b` (the value, then the parameters sorted).
        public var values: [String]
        public var body: [UInt8]
        /// Whether its closing delimiter was seen.
        public var ended: Bool
    }

    /// What the parser made of a body.
    public struct Outcome: Sendable, Hashable {
        public var parts: [Part]
        /// The closing delimiter (`--boundary--`) was seen.
        public var complete: Bool
        /// The parser refused the body as malformed.
        public var malformed: Bool
    }

    /// The boundary of a `multipart/form-data` content type, or nil.
    public static func boundary(contentType: String) -> String? {
        RecordingReceiver.boundary(contentType: contentType)
    }

    /// Parses `body` fed in pieces of `pieces` bytes (cycled; an empty list: one piece).
    public static func parse(_ body: UnsafeRawBufferPointer, boundary: String, pieces: [Int]) -> Outcome {
        let parser = MultipartStream(boundary: boundary)
        let collector = Collector()
        var offset = 0, index = 0
        do {
            while offset < body.count {
                let size = pieces.isEmpty ? body.count : min(max(pieces[index % pieces.count], 1), body.count - offset)
                index += 1
                try parser.feed(UnsafeRawBufferPointer(rebasing: body[offset..<(offset + size)]), into: collector)
                offset += size
            }
        } catch {
            return Outcome(parts: collector.parts, complete: parser.isComplete, malformed: true)
        }
        return Outcome(parts: collector.parts, complete: parser.isComplete, malformed: false)
    }

    private final class Collector: MultipartConsumer {
        var parts: [Part] = []

        func partBegins(headers: [(name: String, value: String)]) throws {
            let values = headers.map { header in
                let (value, parameters) = RecordingReceiver.parseHeaderValue(header.value)
                return ([value] + parameters.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }).joined(separator: "\u{0}")
            }
            parts.append(Part(headers: headers.map { "\($0.name): \($0.value)" }, values: values, body: [], ended: false))
        }

        func partBody(_ bytes: UnsafeRawBufferPointer) throws {
            guard !parts.isEmpty else { return }
            parts[parts.count - 1].body.append(contentsOf: bytes)
        }

        func partEnds() throws {
            guard !parts.isEmpty else { return }
            parts[parts.count - 1].ended = true
        }
    }
}
