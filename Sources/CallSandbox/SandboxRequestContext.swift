import Hummingbird
import NIOCore

/// The request context of the sandbox: keeps the connection's channel (the `cut` and `lost` faults
/// close it) and the faults aimed at the request.
struct SandboxRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel
    var faults = FaultSet()

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }

    /// Closes the connection now, without an answer.
    func dropConnection() async {
        try? await channel.close()
    }
}

/// Shared by the middleware and the routes.
struct SandboxCore: Sendable {
    let configuration: SandboxConfiguration
    let state: SandboxState
    let files: SandboxFiles
    let telnyx: TelnyxPhone
}
