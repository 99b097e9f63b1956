public import Foundation
import Synchronization

/// A loopback port nothing listens on: a connection to it is refused. The socket stays bound,
/// never listening, for the rest of the test process: a port bound and closed again could be
/// handed to another test's server in the meantime (one run met a sandbox answering 401 there).
public func refusedLoopbackPort() throws -> Int {
    let socket = try loopbackSocket(listening: false)
    heldSockets.withLock { $0.append(socket.fd) }
    return socket.port
}

private let heldSockets = Mutex<[Int32]>([])

/// A TCP socket bound to a free loopback port, listening when asked (the caller closes `fd`).
public func loopbackSocket(listening: Bool) throws -> (fd: Int32, port: Int) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestAudioError("socket() failed: errno \(errno)") }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(fd, $0, length) == 0 && (!listening || listen(fd, 1) == 0) && getsockname(fd, $0, &length) == 0
        }
    }
    guard bound else {
        let error = errno
        close(fd)
        throw TestAudioError("bind() on loopback failed: errno \(error)")
    }
    return (fd, Int(UInt16(bigEndian: address.sin_port)))
}

/// One blocking `GET` of `path` on a loopback HTTP server at `port` (HTTP/1.0, the connection
/// closed by the server after the answer): the body, or nil when it failed. For a thread of its
/// own that must not wait for the test's async tasks (a parallel suite can starve them).
public func blockingLoopbackGET(port: Int, _ path: String, headers: [String: String] = [:]) -> Data? {
    blockingLoopbackRequest(port: port, "GET", path, headers: headers)?.body
}

/// An HTTP answer as it came over the wire: nothing followed, nothing decoded.
public struct LoopbackResponse: Sendable {
    public var status: Int
    /// Header names in lower case.
    public var headers: [String: String]
    public var body: Data
    public var text: String { String(decoding: body, as: UTF8.self) }
}

/// One blocking request on a loopback HTTP server at `port` (HTTP/1.0, the connection closed by
/// the server after the answer; a redirect is returned, not followed); nil when it failed.
public func blockingLoopbackRequest(port: Int, _ method: String, _ path: String, headers: [String: String] = [:], body: Data = Data()) -> LoopbackResponse? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var timeout = timeval(tv_sec: 5, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = UInt16(port).bigEndian
    let connected = withUnsafePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
    }
    guard connected else { return nil }
    var headers = headers
    if !body.isEmpty || method == "POST" { headers["Content-Length"] = String(body.count) }
    var request = Data(("\(method) \(path) HTTP/1.0\r\nHost: 127.0.0.1:\(port)\r\n" + headers.map { "\($0): \($1)\r\n" }.joined()
        + "Connection: close\r\n\r\n").utf8)
    request.append(body)
    let sent = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
    guard sent == request.count else { return nil }
    var response = Data()
    var buffer = [UInt8](repeating: 0, count: 64 << 10)
    while true {
        let n = recv(fd, &buffer, buffer.count, 0)
        if n < 0, errno == EINTR { continue }
        guard n > 0 else { break }
        response.append(contentsOf: buffer[0..<n])
    }
    guard let end = response.range(of: Data("\r\n\r\n".utf8)) else { return nil }
    let head = String(decoding: response.subdata(in: response.startIndex..<end.lowerBound), as: UTF8.self).components(separatedBy: "\r\n")
    let statusLine = head.first?.split(separator: " ") ?? []
    guard statusLine.count >= 2, let status = Int(statusLine[1]) else { return nil }
    var fields: [String: String] = [:]
    for line in head.dropFirst() {
        guard let colon = line.firstIndex(of: ":") else { continue }
        fields[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
    return LoopbackResponse(status: status, headers: fields, body: response.subdata(in: end.upperBound..<response.endIndex))
}
