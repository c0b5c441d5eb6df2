import QuiverCore
import Testing

@testable import QuiverTLS

/// DTLS-SRTP's `use_srtp` (RFC 5764 §4.1): offered by a DTLS client, answered with one profile
/// by the server; what WebRTC peers (pion, aiortc) require before they carry SCTP.
struct UseSRTPTests {
    private func pair(client clientProfiles: [SRTPProtectionProfile], server serverProfiles: [SRTPProtectionProfile],
                      version: TLSVersion) -> DTLSPair {
        var client = Configs.client(trusting: TestPKI.p256)
        client.srtpProtectionProfiles = clientProfiles
        var server = Configs.server(TestPKI.p256)
        server.srtpProtectionProfiles = serverProfiles
        return DTLSPair(client: client, server: server, version: version).run()
    }

    @Test("the server's first profile the client offered is chosen, in DTLS 1.2 and 1.3", arguments: [TLSVersion.tls12, .tls13])
    func negotiated(_ version: TLSVersion) {
        let pair = pair(client: [.aes128CMHMACSHA1_80, .aeadAES128GCM], server: [.aeadAES128GCM, .aes128CMHMACSHA1_80], version: version)
        #expect(pair.isEstablished, "\(String(describing: pair.clientError)) \(String(describing: pair.serverError))")
        #expect(pair.client.handshake.negotiatedSRTPProfile == .aeadAES128GCM)
        #expect(pair.server?.handshake.negotiatedSRTPProfile == .aeadAES128GCM)
    }

    @Test("no profile in common, or none configured on one side: no extension, the handshake completes")
    func notNegotiated() {
        for (client, server) in [([SRTPProtectionProfile.aes128CMHMACSHA1_32], [SRTPProtectionProfile.aeadAES256GCM]),
                                 ([], [.aeadAES128GCM]), ([.aeadAES128GCM], [])] {
            let pair = pair(client: client, server: server, version: .tls12)
            #expect(pair.isEstablished)
            #expect(pair.client.handshake.negotiatedSRTPProfile == nil && pair.server?.handshake.negotiatedSRTPProfile == nil)
        }
    }

    @Test("a server answer with a profile not offered, or with two, is illegal_parameter")
    func badAnswers() throws {
        var client = Configs.client(trusting: TestPKI.p256)
        client.srtpProtectionProfiles = [.aeadAES128GCM]
        let handshake = TLSHandshake(client: client, serverName: "localhost", datagram: true)
        for profiles in [[SRTPProtectionProfile.aes128CMHMACSHA1_80], [.aeadAES128GCM, .aeadAES128GCM]] {
            var writer = ByteWriter()
            SRTPProtectionProfile.encode(profiles, mki: [], into: &writer)
            var extensions = Extensions()
            extensions.append(.useSRTP, writer.bytes)
            #expect(throws: TLSError.self) { try handshake.acceptSRTP(extensions) }
        }
        var writer = ByteWriter()
        SRTPProtectionProfile.encode([.aeadAES128GCM], mki: [1, 2], into: &writer)
        var withMKI = Extensions()
        withMKI.append(.useSRTP, writer.bytes)
        #expect(throws: TLSError.self) { try handshake.acceptSRTP(withMKI) }
    }

    @Test("a malformed offer fails the server's handshake with decode_error, not a crash")
    func malformedOffer() throws {
        var reader = ByteReader([0, 3, 0, 1, 0, 0])
        #expect(throws: DecodeError.self) { try SRTPProtectionProfile.decodeOffer(&reader) }
        var empty = ByteReader([0, 0, 0])
        #expect(throws: DecodeError.self) { try SRTPProtectionProfile.decodeOffer(&empty) }
    }
}
