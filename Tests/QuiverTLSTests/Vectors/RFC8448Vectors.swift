// Generated from RFC 8448 (Example Handshake Traces for TLS 1.3) by parsing the RFC text;
// every value's octet count was checked against the count the RFC declares. Do not edit by hand.

/// RFC 8448 test vectors (section numbers in names). Hex strings with whitespace removed, lowercase.
enum RFC8448 {
    /// §3 Simple 1-RTT Handshake (the server RSA key from §2 is included first).
    enum Simple {
        // MARK: §2 Private Keys: the server's RSA key (also used in §5)

        /// modulus (public):  (§2 Private Keys; 128 octets, counted: the RFC states no count here)
        static let serverRSAModulus: String = "b4bb498f8279303d980836399b36c6988c0c68de55e1bdb826d3901a2461eafd2de49a91d015abbc9a95137ace6c1af19eaa6af98c7ced43120998e187a80ee0ccb0524b1b018c3e0b63264d449a6d38e22a5fda430846748030530ef0461c8ca9d9efbfae8ea6d1d03e2bd193eff0ab9a8002c47428a6d35a8d88d79f7f1e3f"

        /// public exponent:  (§2 Private Keys; 3 octets, counted: the RFC states no count here)
        static let serverRSAPublicExponent: String = "010001"

        /// private exponent:  (§2 Private Keys; 128 octets, counted: the RFC states no count here)
        static let serverRSAPrivateExponent: String = "04dea705d43a6ea7209dd8072111a83c81e322a59278b33480641eaf7c0a6985b8e31c44f6de62e1b4c2309f6126e77b7c41e923314bbfa3881305dc1217f16c819ce538e922f369828d0e57195d8c8488460207b2faa726bcf708bbd7db7f679f893492fc2a622e08970aac441ce4e0c3088df25ae679233df8a3bda2ff9941"

        /// prime1:  (§2 Private Keys; 64 octets, counted: the RFC states no count here)
        static let serverRSAPrime1: String = "e435fb7cc83737756dacea96ab7f59a2cc1069db7deb190e17e33a532b273f30a327aa0aaabc58cd67466af9845fadc675fe094af92c4bd1f2c1bc33dd2e0515"

        /// prime2:  (§2 Private Keys; 64 octets, counted: the RFC states no count here)
        static let serverRSAPrime2: String = "cabd3bc0e0438664c8d4cc9f99977a94d9bbfead8e43870abae3f7eb8b4e0eee8af1d9b4719ba6196cf2cbbaeeebf8b3490afe9e9ffa74a88aa51fc645629303"

        /// exponent1:  (§2 Private Keys; 64 octets, counted: the RFC states no count here)
        static let serverRSAExponent1: String = "3f57345c27fe1b687e6e761627b78b1b826433dd760fa0bea6a6acf39490aa1b47cda4869d68f584dd5b5029bd32093b8258661fe715025e5d70a45a08d3d319"

        /// exponent2:  (§2 Private Keys; 64 octets, counted: the RFC states no count here)
        static let serverRSAExponent2: String = "183da01363bd2f2885cacbdc9964bf4764f1517636f86401286f71893c52ccfe40a6c23d0d086b47c6fb10d8fd1041e04def7e9a40ce957c417794e10412d139"

        /// coefficient:  (§2 Private Keys; 64 octets, counted: the RFC states no count here)
        static let serverRSACoefficient: String = "839ca9a085e4286b2c90e466997a2c681f21339aa3477814e4dec11833050ed50dd13cc038048a43c59b2acc416889c037665fe5afa605969f8c01dfa5ca969d"

        // MARK: §3 Simple 1-RTT Handshake

        /// {client}  create an ephemeral x25519 key pair: private key (32 octets)
        static let clientEphemeralPrivateKey: String = "49af42ba7f7994852d713ef2784bcbcaa7911de26adc5642cb634540e7ea5005"

        /// {client}  create an ephemeral x25519 key pair: public key (32 octets)
        static let clientEphemeralPublicKey: String = "99381de560e4bd43d23d8e435a7dbafeb3c06e51c13cae4d5413691e529aaf2c"

        /// {client}  construct a ClientHello handshake message: ClientHello (196 octets)
        static let clientHello: String = "010000c00303cb34ecb1e78163ba1c38c6dacb196a6dffa21a8d9912ec18a2ef6283024dece7000006130113031302010000910000000b0009000006736572766572ff01000100000a00140012001d0017001800190100010101020103010400230000003300260024001d002099381de560e4bd43d23d8e435a7dbafeb3c06e51c13cae4d5413691e529aaf2c002b0003020304000d0020001e040305030603020308040805080604010501060102010402050206020202002d00020101001c00024001"

        /// Derived, not a separate hex block in the RFC: ClientHello bytes 6..<38 (Random) (32 octets)
        static let clientRandom: String = "cb34ecb1e78163ba1c38c6dacb196a6dffa21a8d9912ec18a2ef6283024dece7"

        /// {client}  send handshake record: payload (196 octets)
        static let clientHelloRecordPayload: String = "010000c00303cb34ecb1e78163ba1c38c6dacb196a6dffa21a8d9912ec18a2ef6283024dece7000006130113031302010000910000000b0009000006736572766572ff01000100000a00140012001d0017001800190100010101020103010400230000003300260024001d002099381de560e4bd43d23d8e435a7dbafeb3c06e51c13cae4d5413691e529aaf2c002b0003020304000d0020001e040305030603020308040805080604010501060102010402050206020202002d00020101001c00024001"

        /// {client}  send handshake record: complete record (201 octets)
        static let clientHelloRecord: String = "16030100c4010000c00303cb34ecb1e78163ba1c38c6dacb196a6dffa21a8d9912ec18a2ef6283024dece7000006130113031302010000910000000b0009000006736572766572ff01000100000a00140012001d0017001800190100010101020103010400230000003300260024001d002099381de560e4bd43d23d8e435a7dbafeb3c06e51c13cae4d5413691e529aaf2c002b0003020304000d0020001e040305030603020308040805080604010501060102010402050206020202002d00020101001c00024001"

        // {server}  extract secret "early": salt:  0 (all zero octets)
        //   (no hex block in the RFC; HKDF-Extract with a zero salt, i.e. 32 zero octets for SHA-256)
        /// {server}  extract secret "early": IKM (32 octets)
        /// - Note: All-zero IKM (no PSK).
        static let earlySecretIKM: String = "0000000000000000000000000000000000000000000000000000000000000000"

        /// {server}  extract secret "early": secret (32 octets)
        static let earlySecret: String = "33ad0a1c607ec03b09e6cd9893680ce210adf300aa1f2660e1b22e10f170f92a"

        /// {server}  create an ephemeral x25519 key pair: private key (32 octets)
        static let serverEphemeralPrivateKey: String = "b1580eeadf6dd589b8ef4f2d5652578cc810e9980191ec8d058308cea216a21e"

        /// {server}  create an ephemeral x25519 key pair: public key (32 octets)
        static let serverEphemeralPublicKey: String = "c9828876112095fe66762bdbf7c672e156d6cc253b833df1dd69b1b04e751f0f"

        /// {server}  construct a ServerHello handshake message: ServerHello (90 octets)
        static let serverHello: String = "020000560303a6af06a4121860dc5e6e60249cd34c95930c8ac5cb1434dac155772ed3e2692800130100002e00330024001d0020c9828876112095fe66762bdbf7c672e156d6cc253b833df1dd69b1b04e751f0f002b00020304"

        /// Derived, not a separate hex block in the RFC: ServerHello bytes 6..<38 (Random) (32 octets)
        static let serverRandom: String = "a6af06a4121860dc5e6e60249cd34c95930c8ac5cb1434dac155772ed3e26928"

        /// {server}  derive secret for handshake "tls13 derived": PRK (32 octets)
        static let deriveSecretForHandshakePRK: String = "33ad0a1c607ec03b09e6cd9893680ce210adf300aa1f2660e1b22e10f170f92a"

        /// {server}  derive secret for handshake "tls13 derived": hash (32 octets)
        static let deriveSecretForHandshakeHash: String = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

        /// {server}  derive secret for handshake "tls13 derived": info (49 octets)
        static let deriveSecretForHandshakeInfo: String = "00200d746c733133206465726976656420e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

        /// {server}  derive secret for handshake "tls13 derived": expanded (32 octets)
        static let deriveSecretForHandshake: String = "6f2615a108c702c5678f54fc9dbab69716c076189c48250cebeac3576c3611ba"

        /// {server}  extract secret "handshake": salt (32 octets)
        static let handshakeSecretSalt: String = "6f2615a108c702c5678f54fc9dbab69716c076189c48250cebeac3576c3611ba"

        /// {server}  extract secret "handshake": IKM (32 octets)
        static let sharedSecret: String = "8bd4054fb55b9d63fdfbacf9f04b9f0d35e6d63f537563efd46272900f89492d"

        /// {server}  extract secret "handshake": secret (32 octets)
        static let handshakeSecret: String = "1dc826e93606aa6fdc0aadc12f741b01046aa6b99f691ed221a9f0ca043fbeac"

        /// {server}  derive secret "tls13 c hs traffic": PRK (32 octets)
        static let clientHandshakeTrafficSecretPRK: String = "1dc826e93606aa6fdc0aadc12f741b01046aa6b99f691ed221a9f0ca043fbeac"

        /// {server}  derive secret "tls13 c hs traffic": hash (32 octets)
        static let clientHandshakeTrafficSecretHash: String = "860c06edc07858ee8e78f0e7428c58edd6b43f2ca3e6e95f02ed063cf0e1cad8"

        /// {server}  derive secret "tls13 c hs traffic": info (54 octets)
        static let clientHandshakeTrafficSecretInfo: String = "002012746c7331332063206873207472616666696320860c06edc07858ee8e78f0e7428c58edd6b43f2ca3e6e95f02ed063cf0e1cad8"

        /// {server}  derive secret "tls13 c hs traffic": expanded (32 octets)
        static let clientHandshakeTrafficSecret: String = "b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21"

        /// {server}  derive secret "tls13 s hs traffic": PRK (32 octets)
        static let serverHandshakeTrafficSecretPRK: String = "1dc826e93606aa6fdc0aadc12f741b01046aa6b99f691ed221a9f0ca043fbeac"

        /// {server}  derive secret "tls13 s hs traffic": hash (32 octets)
        static let serverHandshakeTrafficSecretHash: String = "860c06edc07858ee8e78f0e7428c58edd6b43f2ca3e6e95f02ed063cf0e1cad8"

        /// {server}  derive secret "tls13 s hs traffic": info (54 octets)
        static let serverHandshakeTrafficSecretInfo: String = "002012746c7331332073206873207472616666696320860c06edc07858ee8e78f0e7428c58edd6b43f2ca3e6e95f02ed063cf0e1cad8"

        /// {server}  derive secret "tls13 s hs traffic": expanded (32 octets)
        static let serverHandshakeTrafficSecret: String = "b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38"

        /// {server}  derive secret for master "tls13 derived": PRK (32 octets)
        static let deriveSecretForMasterPRK: String = "1dc826e93606aa6fdc0aadc12f741b01046aa6b99f691ed221a9f0ca043fbeac"

        /// {server}  derive secret for master "tls13 derived": hash (32 octets)
        static let deriveSecretForMasterHash: String = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

        /// {server}  derive secret for master "tls13 derived": info (49 octets)
        static let deriveSecretForMasterInfo: String = "00200d746c733133206465726976656420e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

        /// {server}  derive secret for master "tls13 derived": expanded (32 octets)
        static let deriveSecretForMaster: String = "43de77e0c77713859a944db9db2590b53190a65b3ee2e4f12dd7a0bb7ce254b4"

        /// {server}  extract secret "master": salt (32 octets)
        static let masterSecretSalt: String = "43de77e0c77713859a944db9db2590b53190a65b3ee2e4f12dd7a0bb7ce254b4"

        /// {server}  extract secret "master": IKM (32 octets)
        static let masterSecretIKM: String = "0000000000000000000000000000000000000000000000000000000000000000"

        /// {server}  extract secret "master": secret (32 octets)
        static let masterSecret: String = "18df06843d13a08bf2a449844c5f8a478001bc4d4c627984d5a41da8d0402919"

        /// {server}  send handshake record: payload (90 octets)
        static let serverHelloRecordPayload: String = "020000560303a6af06a4121860dc5e6e60249cd34c95930c8ac5cb1434dac155772ed3e2692800130100002e00330024001d0020c9828876112095fe66762bdbf7c672e156d6cc253b833df1dd69b1b04e751f0f002b00020304"

        /// {server}  send handshake record: complete record (95 octets)
        static let serverHelloRecord: String = "160303005a020000560303a6af06a4121860dc5e6e60249cd34c95930c8ac5cb1434dac155772ed3e2692800130100002e00330024001d0020c9828876112095fe66762bdbf7c672e156d6cc253b833df1dd69b1b04e751f0f002b00020304"

        /// {server}  derive write traffic keys for handshake data: PRK (32 octets)
        static let serverHandshakeWriteKeysPRK: String = "b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38"

        /// {server}  derive write traffic keys for handshake data: key info (13 octets)
        static let serverHandshakeWriteKeyInfo: String = "001009746c733133206b657900"

        /// {server}  derive write traffic keys for handshake data: key expanded (16 octets)
        static let serverHandshakeWriteKey: String = "3fce516009c21727d0f2e4e86ee403bc"

        /// {server}  derive write traffic keys for handshake data: iv info (12 octets)
        static let serverHandshakeWriteIVInfo: String = "000c08746c73313320697600"

        /// {server}  derive write traffic keys for handshake data: iv expanded (12 octets)
        static let serverHandshakeWriteIV: String = "5d313eb2671276ee13000b30"

        /// {server}  construct an EncryptedExtensions handshake message: EncryptedExtensions (40 octets)
        static let encryptedExtensions: String = "080000240022000a00140012001d00170018001901000101010201030104001c0002400100000000"

        /// {server}  construct a Certificate handshake message: Certificate (445 octets)
        static let certificate: String = "0b0001b9000001b50001b0308201ac30820115a003020102020102300d06092a864886f70d01010b0500300e310c300a06035504031303727361301e170d3136303733303031323335395a170d3236303733303031323335395a300e310c300a0603550403130372736130819f300d06092a864886f70d010101050003818d0030818902818100b4bb498f8279303d980836399b36c6988c0c68de55e1bdb826d3901a2461eafd2de49a91d015abbc9a95137ace6c1af19eaa6af98c7ced43120998e187a80ee0ccb0524b1b018c3e0b63264d449a6d38e22a5fda430846748030530ef0461c8ca9d9efbfae8ea6d1d03e2bd193eff0ab9a8002c47428a6d35a8d88d79f7f1e3f0203010001a31a301830090603551d1304023000300b0603551d0f0404030205a0300d06092a864886f70d01010b05000381810085aad2a0e5b9276b908c65f73a7267170618a54c5f8a7b337d2df7a594365417f2eae8f8a58c8f8172f9319cf36b7fd6c55b80f21a03015156726096fd335e5e67f2dbf102702e608ccae6bec1fc63a42a99be5c3eb7107c3c54e9b9eb2bd5203b1c3b84e0a8b2f759409ba3eac9d91d402dcc0cc8f8961229ac9187b42b4de10000"

        /// {server}  construct a CertificateVerify handshake message: CertificateVerify (136 octets)
        static let certificateVerify: String = "0f000084080400805a747c5d88fa9bd2e55ab085a61015b7211f824cd484145ab3ff52f1fda8477b0b7abc90db78e2d33a5c141a078653fa6bef780c5ea248eeaaa785c4f394cab6d30bbe8d4859ee511f602957b15411ac027671459e46445c9ea58c181e818e95b8c3fb0bf3278409d3be152a3da5043e063dda65cdf5aea20d53dfacd42f74f3"

        /// {server}  calculate finished "tls13 finished": PRK (32 octets)
        static let serverFinishedKeyPRK: String = "b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38"

        /// {server}  calculate finished "tls13 finished": hash (0 octets)
        static let serverFinishedKeyHash: String = ""

        /// {server}  calculate finished "tls13 finished": info (18 octets)
        static let serverFinishedKeyInfo: String = "00200e746c7331332066696e697368656400"

        /// {server}  calculate finished "tls13 finished": expanded (32 octets)
        static let serverFinishedKey: String = "008d3b66f816ea559f96b537e885c31fc068bf492c652f01f288a1d8cdc19fc8"

        /// {server}  calculate finished "tls13 finished": finished (32 octets)
        static let serverFinishedVerifyData: String = "9b9b141d906337fbd2cbdce71df4deda4ab42c309572cb7fffee5454b78f0718"

        /// {server}  construct a Finished handshake message: Finished (36 octets)
        static let serverFinished: String = "140000209b9b141d906337fbd2cbdce71df4deda4ab42c309572cb7fffee5454b78f0718"

        /// {server}  send handshake record: payload (657 octets)
        /// - Note: Plaintext of the encrypted record: EncryptedExtensions || Certificate || CertificateVerify || Finished.
        static let serverEncryptedHandshakeRecordPayload: String = "080000240022000a00140012001d00170018001901000101010201030104001c00024001000000000b0001b9000001b50001b0308201ac30820115a003020102020102300d06092a864886f70d01010b0500300e310c300a06035504031303727361301e170d3136303733303031323335395a170d3236303733303031323335395a300e310c300a0603550403130372736130819f300d06092a864886f70d010101050003818d0030818902818100b4bb498f8279303d980836399b36c6988c0c68de55e1bdb826d3901a2461eafd2de49a91d015abbc9a95137ace6c1af19eaa6af98c7ced43120998e187a80ee0ccb0524b1b018c3e0b63264d449a6d38e22a5fda430846748030530ef0461c8ca9d9efbfae8ea6d1d03e2bd193eff0ab9a8002c47428a6d35a8d88d79f7f1e3f0203010001a31a301830090603551d1304023000300b0603551d0f0404030205a0300d06092a864886f70d01010b05000381810085aad2a0e5b9276b908c65f73a7267170618a54c5f8a7b337d2df7a594365417f2eae8f8a58c8f8172f9319cf36b7fd6c55b80f21a03015156726096fd335e5e67f2dbf102702e608ccae6bec1fc63a42a99be5c3eb7107c3c54e9b9eb2bd5203b1c3b84e0a8b2f759409ba3eac9d91d402dcc0cc8f8961229ac9187b42b4de100000f000084080400805a747c5d88fa9bd2e55ab085a61015b7211f824cd484145ab3ff52f1fda8477b0b7abc90db78e2d33a5c141a078653fa6bef780c5ea248eeaaa785c4f394cab6d30bbe8d4859ee511f602957b15411ac027671459e46445c9ea58c181e818e95b8c3fb0bf3278409d3be152a3da5043e063dda65cdf5aea20d53dfacd42f74f3140000209b9b141d906337fbd2cbdce71df4deda4ab42c309572cb7fffee5454b78f0718"

        /// {server}  send handshake record: complete record (679 octets)
        static let serverEncryptedHandshakeRecord: String = "17030302a2d1ff334a56f5bff6594a07cc87b580233f500f45e489e7f33af35edf7869fcf40aa40aa2b8ea73f848a7ca07612ef9f945cb960b4068905123ea78b111b429ba9191cd05d2a389280f526134aadc7fc78c4b729df828b5ecf7b13bd9aefb0e57f271585b8ea9bb355c7c79020716cfb9b1183ef3ab20e37d57a6b9d7477609aee6e122a4cf51427325250c7d0e509289444c9b3a648f1d71035d2ed65b0e3cdd0cbae8bf2d0b227812cbb360987255cc744110c453baa4fcd610928d809810e4b7ed1a8fd991f06aa6248204797e36a6a73b70a2559c09ead686945ba246ab66e5edd8044b4c6de3fcf2a89441ac66272fd8fb330ef8190579b3684596c960bd596eea520a56a8d650f563aad27409960dca63d3e688611ea5e22f4415cf9538d51a200c27034272968a264ed6540c84838d89f72c24461aad6d26f59ecaba9acbbb317b66d902f4f292a36ac1b639c637ce343117b659622245317b49eeda0c6258f100d7d961ffb138647e92ea330faeea6dfa31c7a84dc3bd7e1b7a6c7178af36879018e3f252107f243d243dc7339d5684c8b0378bf30244da8c87c843f5e56eb4c5e8280a2b48052cf93b16499a66db7cca71e4599426f7d461e66f99882bd89fc50800becca62d6c74116dbd2972fda1fa80f85df881edbe5a37668936b335583b599186dc5c6918a396fa48a181d6b6fa4f9d62d513afbb992f2b992f67f8afe67f76913fa388cb5630c8ca01e0c65d11c66a1e2ac4c85977b7c7a6999bbf10dc35ae69f5515614636c0b9b68c19ed2e31c0b3b66763038ebba42f3b38edc0399f3a9f23faa63978c317fc9fa66a73f60f0504de93b5b845e275592c12335ee340bbc4fddd502784016e4b3be7ef04dda49f4b440a30cb5d2af939828fd4ae3794e44f94df5a631ede42c1719bfdabf0253fe5175be898e750edc53370d2b"

        /// {server}  derive secret "tls13 c ap traffic": PRK (32 octets)
        static let clientApplicationTrafficSecret0PRK: String = "18df06843d13a08bf2a449844c5f8a478001bc4d4c627984d5a41da8d0402919"

        /// {server}  derive secret "tls13 c ap traffic": hash (32 octets)
        static let clientApplicationTrafficSecret0Hash: String = "9608102a0f1ccc6db6250b7b7e417b1a000eaada3daae4777a7686c9ff83df13"

        /// {server}  derive secret "tls13 c ap traffic": info (54 octets)
        static let clientApplicationTrafficSecret0Info: String = "002012746c73313320632061702074726166666963209608102a0f1ccc6db6250b7b7e417b1a000eaada3daae4777a7686c9ff83df13"

        /// {server}  derive secret "tls13 c ap traffic": expanded (32 octets)
        static let clientApplicationTrafficSecret0: String = "9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5"

        /// {server}  derive secret "tls13 s ap traffic": PRK (32 octets)
        static let serverApplicationTrafficSecret0PRK: String = "18df06843d13a08bf2a449844c5f8a478001bc4d4c627984d5a41da8d0402919"

        /// {server}  derive secret "tls13 s ap traffic": hash (32 octets)
        static let serverApplicationTrafficSecret0Hash: String = "9608102a0f1ccc6db6250b7b7e417b1a000eaada3daae4777a7686c9ff83df13"

        /// {server}  derive secret "tls13 s ap traffic": info (54 octets)
        static let serverApplicationTrafficSecret0Info: String = "002012746c73313320732061702074726166666963209608102a0f1ccc6db6250b7b7e417b1a000eaada3daae4777a7686c9ff83df13"

        /// {server}  derive secret "tls13 s ap traffic": expanded (32 octets)
        static let serverApplicationTrafficSecret0: String = "a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643"

        /// {server}  derive secret "tls13 exp master": PRK (32 octets)
        static let exporterMasterSecretPRK: String = "18df06843d13a08bf2a449844c5f8a478001bc4d4c627984d5a41da8d0402919"

        /// {server}  derive secret "tls13 exp master": hash (32 octets)
        static let exporterMasterSecretHash: String = "9608102a0f1ccc6db6250b7b7e417b1a000eaada3daae4777a7686c9ff83df13"

        /// {server}  derive secret "tls13 exp master": info (52 octets)
        static let exporterMasterSecretInfo: String = "002010746c73313320657870206d6173746572209608102a0f1ccc6db6250b7b7e417b1a000eaada3daae4777a7686c9ff83df13"

        /// {server}  derive secret "tls13 exp master": expanded (32 octets)
        static let exporterMasterSecret: String = "fe22f881176eda18eb8f44529e6792c50c9a3f89452f68d8ae311b4309d3cf50"

        /// {server}  derive write traffic keys for application data: PRK (32 octets)
        static let serverApplicationWriteKeysPRK: String = "a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643"

        /// {server}  derive write traffic keys for application data: key info (13 octets)
        static let serverApplicationWriteKeyInfo: String = "001009746c733133206b657900"

        /// {server}  derive write traffic keys for application data: key expanded (16 octets)
        static let serverApplicationWriteKey: String = "9f02283b6c9c07efc26bb9f2ac92e356"

        /// {server}  derive write traffic keys for application data: iv info (12 octets)
        static let serverApplicationWriteIVInfo: String = "000c08746c73313320697600"

        /// {server}  derive write traffic keys for application data: iv expanded (12 octets)
        static let serverApplicationWriteIV: String = "cf782b88dd83549aadf1e984"

        /// {server}  derive read traffic keys for handshake data: PRK (32 octets)
        /// - Note: Read keys of the server, i.e. the client's write keys.
        static let clientHandshakeWriteKeysPRK: String = "b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21"

        /// {server}  derive read traffic keys for handshake data: key info (13 octets)
        /// - Note: Read keys of the server, i.e. the client's write keys.
        static let clientHandshakeWriteKeyInfo: String = "001009746c733133206b657900"

        /// {server}  derive read traffic keys for handshake data: key expanded (16 octets)
        /// - Note: Read keys of the server, i.e. the client's write keys.
        static let clientHandshakeWriteKey: String = "dbfaa693d1762c5b666af5d950258d01"

        /// {server}  derive read traffic keys for handshake data: iv info (12 octets)
        /// - Note: Read keys of the server, i.e. the client's write keys.
        static let clientHandshakeWriteIVInfo: String = "000c08746c73313320697600"

        /// {server}  derive read traffic keys for handshake data: iv expanded (12 octets)
        /// - Note: Read keys of the server, i.e. the client's write keys.
        static let clientHandshakeWriteIV: String = "5bd3c71b836e0b76bb73265f"

        /// {client}  derive secret for handshake "tls13 derived": PRK (32 octets)
        /// - Note: The client's own (identical) computation of the derivation shown earlier for the server.
        static let clientDeriveSecretForHandshakePRK: String = "33ad0a1c607ec03b09e6cd9893680ce210adf300aa1f2660e1b22e10f170f92a"

        /// {client}  derive secret for handshake "tls13 derived": hash (32 octets)
        /// - Note: The client's own (identical) computation of the derivation shown earlier for the server.
        static let clientDeriveSecretForHandshakeHash: String = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

        /// {client}  derive secret for handshake "tls13 derived": info (49 octets)
        /// - Note: The client's own (identical) computation of the derivation shown earlier for the server.
        static let clientDeriveSecretForHandshakeInfo: String = "00200d746c733133206465726976656420e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

        /// {client}  derive secret for handshake "tls13 derived": expanded (32 octets)
        /// - Note: The client's own (identical) computation of the derivation shown earlier for the server.
        static let clientDeriveSecretForHandshake: String = "6f2615a108c702c5678f54fc9dbab69716c076189c48250cebeac3576c3611ba"

        /// {client}  calculate finished "tls13 finished": PRK (32 octets)
        static let clientFinishedKeyPRK: String = "b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21"

        /// {client}  calculate finished "tls13 finished": hash (0 octets)
        static let clientFinishedKeyHash: String = ""

        /// {client}  calculate finished "tls13 finished": info (18 octets)
        static let clientFinishedKeyInfo: String = "00200e746c7331332066696e697368656400"

        /// {client}  calculate finished "tls13 finished": expanded (32 octets)
        static let clientFinishedKey: String = "b80ad01015fb2f0bd65ff7d4da5d6bf83f84821d1f87fdc7d3c75b5a7b42d9c4"

        /// {client}  calculate finished "tls13 finished": finished (32 octets)
        static let clientFinishedVerifyData: String = "a8ec436d677634ae525ac1fcebe11a039ec17694fac6e98527b642f2edd5ce61"

        /// {client}  construct a Finished handshake message: Finished (36 octets)
        static let clientFinished: String = "14000020a8ec436d677634ae525ac1fcebe11a039ec17694fac6e98527b642f2edd5ce61"

        /// {client}  send handshake record: payload (36 octets)
        static let clientFinishedRecordPayload: String = "14000020a8ec436d677634ae525ac1fcebe11a039ec17694fac6e98527b642f2edd5ce61"

        /// {client}  send handshake record: complete record (58 octets)
        static let clientFinishedRecord: String = "170303003575ec4dc238cce60b298044a71e219c56cc77b0517fe9b93c7a4bfc44d87f38f80338ac98fc46deb384bd1caeacab6867d726c40546"

        /// {client}  derive write traffic keys for application data: PRK (32 octets)
        static let clientApplicationWriteKeysPRK: String = "9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5"

        /// {client}  derive write traffic keys for application data: key info (13 octets)
        static let clientApplicationWriteKeyInfo: String = "001009746c733133206b657900"

        /// {client}  derive write traffic keys for application data: key expanded (16 octets)
        static let clientApplicationWriteKey: String = "17422dda596ed5d9acd890e3c63f5051"

        /// {client}  derive write traffic keys for application data: iv info (12 octets)
        static let clientApplicationWriteIVInfo: String = "000c08746c73313320697600"

        /// {client}  derive write traffic keys for application data: iv expanded (12 octets)
        static let clientApplicationWriteIV: String = "5b78923dee08579033e523d9"

        /// {client}  derive secret "tls13 res master": PRK (32 octets)
        static let resumptionMasterSecretPRK: String = "18df06843d13a08bf2a449844c5f8a478001bc4d4c627984d5a41da8d0402919"

        /// {client}  derive secret "tls13 res master": hash (32 octets)
        static let resumptionMasterSecretHash: String = "209145a96ee8e2a122ff810047cc952684658d6049e86429426db87c54ad143d"

        /// {client}  derive secret "tls13 res master": info (52 octets)
        static let resumptionMasterSecretInfo: String = "002010746c73313320726573206d617374657220209145a96ee8e2a122ff810047cc952684658d6049e86429426db87c54ad143d"

        /// {client}  derive secret "tls13 res master": expanded (32 octets)
        static let resumptionMasterSecret: String = "7df235f2031d2a051287d02b0241b0bfdaf86cc856231f2d5aba46c434ec196c"

        /// {server}  generate resumption secret "tls13 resumption": PRK (32 octets)
        static let resumptionPSKPRK: String = "7df235f2031d2a051287d02b0241b0bfdaf86cc856231f2d5aba46c434ec196c"

        /// {server}  generate resumption secret "tls13 resumption": hash (2 octets)
        /// - Note: The ticket_nonce from the NewSessionTicket, used as the HKDF-Expand-Label context.
        static let resumptionPSKHash: String = "0000"

        /// {server}  generate resumption secret "tls13 resumption": info (22 octets)
        static let resumptionPSKInfo: String = "002010746c73313320726573756d7074696f6e020000"

        /// {server}  generate resumption secret "tls13 resumption": expanded (32 octets)
        static let resumptionPSK: String = "4ecd0eb6ec3b4d87f5d6028f922ca4c5851a277fd41311c9e62d2c9492e1c4f3"

        /// {server}  construct a NewSessionTicket handshake message: NewSessionTicket (205 octets)
        static let newSessionTicket: String = "040000c90000001efad6aac502000000b22c035d829359ee5ff7af4ec900000000262a6494dc486d2c8a34cb33fa90bf1b0070ad3c498883c9367c09a2be785abc55cd226097a3a982117283f82a03a143efd3ff5dd36d64e861be7fd61d2827db279cce145077d454a3664d4e6da4d29ee03725a6a4dafcd0fc67d2aea70529513e3da2677fa5906c5b3f7d8f92f228bda40dda721470f9fbf297b5aea617646fac5c03272e970727c621a79141ef5f7de6505e5bfbc388e93343694093934ae4d3570008002a000400000400"

        /// {server}  send handshake record: payload (205 octets)
        static let newSessionTicketRecordPayload: String = "040000c90000001efad6aac502000000b22c035d829359ee5ff7af4ec900000000262a6494dc486d2c8a34cb33fa90bf1b0070ad3c498883c9367c09a2be785abc55cd226097a3a982117283f82a03a143efd3ff5dd36d64e861be7fd61d2827db279cce145077d454a3664d4e6da4d29ee03725a6a4dafcd0fc67d2aea70529513e3da2677fa5906c5b3f7d8f92f228bda40dda721470f9fbf297b5aea617646fac5c03272e970727c621a79141ef5f7de6505e5bfbc388e93343694093934ae4d3570008002a000400000400"

        /// {server}  send handshake record: complete record (227 octets)
        static let newSessionTicketRecord: String = "17030300de3a6b8f90414a97d6959c3487680de5134a2b240e6cffac116e95d41d6af8f6b580dcf3d11d63c758db289a015940252f55713e061dc13e078891a38efbcf5753ad8ef170ad3c7353d16d9da773b9ca7f2b9fa1b6c0d4a3d03f75e09c30ba1e62972ac46f75f7b981be63439b2999ce13064615139891d5e4c5b406f16e3fc181a77ca475840025db2f0a77f81b5ab05b94c01346755f69232c86519d86cbeeac87aac347d143f9605d64f650db4d023e70e952ca49fe5137121c74bc2697687e248746d6df353005f3bce18696129c8153556b3b6c6779b37bf15985684f"

        /// {client}  send application_data record: payload (50 octets)
        static let clientApplicationDataRecordPayload: String = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031"

        /// {client}  send application_data record: complete record (72 octets)
        static let clientApplicationDataRecord: String = "1703030043a23f7054b62c94d0affafe8228ba55cbefacea42f914aa66bcab3f2b9819a8a5b46b395bd54a9a20441e2b62974e1f5a6292a2977014bd1e3deae63aeebb21694915e4"

        /// {server}  send application_data record: payload (50 octets)
        static let serverApplicationDataRecordPayload: String = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031"

        /// {server}  send application_data record: complete record (72 octets)
        static let serverApplicationDataRecord: String = "17030300432e937e11ef4ac740e538ad36005fc4a46932fc3225d05f82aa1b36e30efaf97d90e6dffc602dcb501a59a8fcc49c4bf2e5f0a21c0047c2abf332540dd032e167c2955d"

        /// {client}  send alert record: payload (2 octets)
        static let clientAlertRecordPayload: String = "0100"

        /// {client}  send alert record: complete record (24 octets)
        static let clientAlertRecord: String = "1703030013c9872760655666b74d7ff1153efd6db6d0b0e3"

        /// {server}  send alert record: payload (2 octets)
        static let serverAlertRecordPayload: String = "0100"

        /// {server}  send alert record: complete record (24 octets)
        static let serverAlertRecord: String = "1703030013b58fd67166ebf599d24720cfbe7efa7a8864a9"
    }

    /// §4 Resumed 0-RTT Handshake (resumes the §3 session using its NewSessionTicket).
    enum Resumed {
        /// {client}  create an ephemeral x25519 key pair: private key (32 octets)
        static let clientEphemeralPrivateKey: String = "bff91188283846dd6a2134ef7180ca2b0b14fb10dce707b5098c0dddc813b2df"

        /// {client}  create an ephemeral x25519 key pair: public key (32 octets)
        static let clientEphemeralPublicKey: String = "e4ffb68ac05f8d96c99da26698346c6be16482badddafe051a66b4f18d668f0b"

        // {client}  extract secret "early": salt:  0 (all zero octets)
        //   (no hex block in the RFC; HKDF-Extract with a zero salt, i.e. 32 zero octets for SHA-256)
        /// {client}  extract secret "early": IKM (32 octets)
        /// - Note: This IKM is the resumption PSK, equal to `RFC8448.Simple.resumptionPSK`.
        static let earlySecretIKM: String = "4ecd0eb6ec3b4d87f5d6028f922ca4c5851a277fd41311c9e62d2c9492e1c4f3"

        /// {client}  extract secret "early": secret (32 octets)
        static let earlySecret: String = "9b2188e9b2fc6d64d71dc329900e20bb41915000f678aa839cbb797cb7d8332c"

        /// {client}  construct a ClientHello handshake message: ClientHello (477 octets)
        /// - Note: The RFC shows only the first 477 octets here (the ClientHello before the PSK binders are appended; the length field already covers 508 octets). Identical to `clientHelloPrefix`; the complete 512-octet ClientHello is `clientHelloRecordPayload`.
        static let clientHelloWithoutBinders: String = "010001fc03031bc3ceb6bbe39cff938355b5a50adb6db21b7a6af649d7b4bc419d7876487d95000006130113031302010001cd0000000b0009000006736572766572ff01000100000a00140012001d00170018001901000101010201030104003300260024001d0020e4ffb68ac05f8d96c99da26698346c6be16482badddafe051a66b4f18d668f0b002a0000002b0003020304000d0020001e040305030603020308040805080604010501060102010402050206020202002d00020101001c0002400100150057000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000002900dd00b800b22c035d829359ee5ff7af4ec900000000262a6494dc486d2c8a34cb33fa90bf1b0070ad3c498883c9367c09a2be785abc55cd226097a3a982117283f82a03a143efd3ff5dd36d64e861be7fd61d2827db279cce145077d454a3664d4e6da4d29ee03725a6a4dafcd0fc67d2aea70529513e3da2677fa5906c5b3f7d8f92f228bda40dda721470f9fbf297b5aea617646fac5c03272e970727c621a79141ef5f7de6505e5bfbc388e93343694093934ae4d357fad6aacb"

        /// Derived, not a separate hex block in the RFC: ClientHello bytes 6..<38 (Random) (32 octets)
        static let clientRandom: String = "1bc3ceb6bbe39cff938355b5a50adb6db21b7a6af649d7b4bc419d7876487d95"

        /// {client}  calculate PSK binder: ClientHello prefix (477 octets)
        static let clientHelloPrefix: String = "010001fc03031bc3ceb6bbe39cff938355b5a50adb6db21b7a6af649d7b4bc419d7876487d95000006130113031302010001cd0000000b0009000006736572766572ff01000100000a00140012001d00170018001901000101010201030104003300260024001d0020e4ffb68ac05f8d96c99da26698346c6be16482badddafe051a66b4f18d668f0b002a0000002b0003020304000d0020001e040305030603020308040805080604010501060102010402050206020202002d00020101001c0002400100150057000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000002900dd00b800b22c035d829359ee5ff7af4ec900000000262a6494dc486d2c8a34cb33fa90bf1b0070ad3c498883c9367c09a2be785abc55cd226097a3a982117283f82a03a143efd3ff5dd36d64e861be7fd61d2827db279cce145077d454a3664d4e6da4d29ee03725a6a4dafcd0fc67d2aea70529513e3da2677fa5906c5b3f7d8f92f228bda40dda721470f9fbf297b5aea617646fac5c03272e970727c621a79141ef5f7de6505e5bfbc388e93343694093934ae4d357fad6aacb"

        /// {client}  calculate PSK binder: binder hash (32 octets)
        static let binderHash: String = "63224b2e4573f2d3454ca84b9d009a04f6be9e05711a8396473aefa01e924a14"

        /// {client}  calculate PSK binder: PRK (32 octets)
        /// - Note: The binder_key (the RFC shows it only as the PRK of this finished-key derivation).
        static let binderKey: String = "69fe131a3bbad5d63c64eebcc30e395b9d8107726a13d074e389dbc8a4e47256"

        /// {client}  calculate PSK binder: hash (0 octets)
        static let binderFinishedKeyHash: String = ""

        /// {client}  calculate PSK binder: info (18 octets)
        static let binderFinishedKeyInfo: String = "00200e746c7331332066696e697368656400"

        /// {client}  calculate PSK binder: expanded (32 octets)
        static let binderFinishedKey: String = "5588673e72cb59c87d220caffe94f2dea9a3b1609f7d50e90a48227db9ed7eaa"

        /// {client}  calculate PSK binder: finished (32 octets)
        /// - Note: The PSK binder value (labeled "finished" in the RFC, which uses the Finished construction).
        static let binder: String = "3add4fb2d8fdf822a0ca3cf7678ef5e88dae990141c5924d57bb6fa31b9e5f9d"

        /// {client}  send handshake record: payload (512 octets)
        static let clientHelloRecordPayload: String = "010001fc03031bc3ceb6bbe39cff938355b5a50adb6db21b7a6af649d7b4bc419d7876487d95000006130113031302010001cd0000000b0009000006736572766572ff01000100000a00140012001d00170018001901000101010201030104003300260024001d0020e4ffb68ac05f8d96c99da26698346c6be16482badddafe051a66b4f18d668f0b002a0000002b0003020304000d0020001e040305030603020308040805080604010501060102010402050206020202002d00020101001c0002400100150057000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000002900dd00b800b22c035d829359ee5ff7af4ec900000000262a6494dc486d2c8a34cb33fa90bf1b0070ad3c498883c9367c09a2be785abc55cd226097a3a982117283f82a03a143efd3ff5dd36d64e861be7fd61d2827db279cce145077d454a3664d4e6da4d29ee03725a6a4dafcd0fc67d2aea70529513e3da2677fa5906c5b3f7d8f92f228bda40dda721470f9fbf297b5aea617646fac5c03272e970727c621a79141ef5f7de6505e5bfbc388e93343694093934ae4d357fad6aacb0021203add4fb2d8fdf822a0ca3cf7678ef5e88dae990141c5924d57bb6fa31b9e5f9d"

        /// {client}  send handshake record: complete record (517 octets)
        static let clientHelloRecord: String = "1603010200010001fc03031bc3ceb6bbe39cff938355b5a50adb6db21b7a6af649d7b4bc419d7876487d95000006130113031302010001cd0000000b0009000006736572766572ff01000100000a00140012001d00170018001901000101010201030104003300260024001d0020e4ffb68ac05f8d96c99da26698346c6be16482badddafe051a66b4f18d668f0b002a0000002b0003020304000d0020001e040305030603020308040805080604010501060102010402050206020202002d00020101001c0002400100150057000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000002900dd00b800b22c035d829359ee5ff7af4ec900000000262a6494dc486d2c8a34cb33fa90bf1b0070ad3c498883c9367c09a2be785abc55cd226097a3a982117283f82a03a143efd3ff5dd36d64e861be7fd61d2827db279cce145077d454a3664d4e6da4d29ee03725a6a4dafcd0fc67d2aea70529513e3da2677fa5906c5b3f7d8f92f228bda40dda721470f9fbf297b5aea617646fac5c03272e970727c621a79141ef5f7de6505e5bfbc388e93343694093934ae4d357fad6aacb0021203add4fb2d8fdf822a0ca3cf7678ef5e88dae990141c5924d57bb6fa31b9e5f9d"

        /// {client}  derive secret "tls13 c e traffic": PRK (32 octets)
        static let clientEarlyTrafficSecretPRK: String = "9b2188e9b2fc6d64d71dc329900e20bb41915000f678aa839cbb797cb7d8332c"

        /// {client}  derive secret "tls13 c e traffic": hash (32 octets)
        static let clientEarlyTrafficSecretHash: String = "08ad0fa05d7c7233b1775ba2ff9f4c5b8b59276b7f227f13a976245f5d960913"

        /// {client}  derive secret "tls13 c e traffic": info (53 octets)
        static let clientEarlyTrafficSecretInfo: String = "002011746c7331332063206520747261666669632008ad0fa05d7c7233b1775ba2ff9f4c5b8b59276b7f227f13a976245f5d960913"

        /// {client}  derive secret "tls13 c e traffic": expanded (32 octets)
        static let clientEarlyTrafficSecret: String = "3fbbe6a60deb66c30a32795aba0eff7eaa10105586e7be5c09678d63b6caab62"

        /// {client}  derive secret "tls13 e exp master": PRK (32 octets)
        static let earlyExporterMasterSecretPRK: String = "9b2188e9b2fc6d64d71dc329900e20bb41915000f678aa839cbb797cb7d8332c"

        /// {client}  derive secret "tls13 e exp master": hash (32 octets)
        static let earlyExporterMasterSecretHash: String = "08ad0fa05d7c7233b1775ba2ff9f4c5b8b59276b7f227f13a976245f5d960913"

        /// {client}  derive secret "tls13 e exp master": info (54 octets)
        static let earlyExporterMasterSecretInfo: String = "002012746c733133206520657870206d61737465722008ad0fa05d7c7233b1775ba2ff9f4c5b8b59276b7f227f13a976245f5d960913"

        /// {client}  derive secret "tls13 e exp master": expanded (32 octets)
        static let earlyExporterMasterSecret: String = "b2026866610937d7423e5be90862ccf24c0e6091186d34f812089ff5be2ef7df"

        /// {client}  derive write traffic keys for early application data: PRK (32 octets)
        static let clientEarlyDataWriteKeysPRK: String = "3fbbe6a60deb66c30a32795aba0eff7eaa10105586e7be5c09678d63b6caab62"

        /// {client}  derive write traffic keys for early application data: key info (13 octets)
        static let clientEarlyDataWriteKeyInfo: String = "001009746c733133206b657900"

        /// {client}  derive write traffic keys for early application data: key expanded (16 octets)
        static let clientEarlyDataWriteKey: String = "920205a5b7bf2115e6fc5c2942834f54"

        /// {client}  derive write traffic keys for early application data: iv info (12 octets)
        static let clientEarlyDataWriteIVInfo: String = "000c08746c73313320697600"

        /// {client}  derive write traffic keys for early application data: iv expanded (12 octets)
        static let clientEarlyDataWriteIV: String = "6d475f0993c8e564610db2b9"

        /// {client}  send application_data record: payload (6 octets)
        static let clientEarlyDataRecordPayload: String = "414243444546"

        /// {client}  send application_data record: complete record (28 octets)
        static let clientEarlyDataRecord: String = "1703030017ab1df420e75c457a7cc5d2844f76d5aee4b4edbf049be0"

        /// {server}  create an ephemeral x25519 key pair: private key (32 octets)
        static let serverEphemeralPrivateKey: String = "de5b4476e7b490b2652d338acbf2948066f255f9440e23b98fc69835298dc107"

        /// {server}  create an ephemeral x25519 key pair: public key (32 octets)
        static let serverEphemeralPublicKey: String = "121761ee42c333e1b9e77b60dd57c2053cd94512ab47f115e86eff50942cea31"

        /// {server}  construct a ServerHello handshake message: ServerHello (96 octets)
        static let serverHello: String = "0200005c03033ccfd2dec890222763472ae8136777c9d7358777bb66e91ea5122495f559ea2d00130100003400290002000000330024001d0020121761ee42c333e1b9e77b60dd57c2053cd94512ab47f115e86eff50942cea31002b00020304"

        /// Derived, not a separate hex block in the RFC: ServerHello bytes 6..<38 (Random) (32 octets)
        static let serverRandom: String = "3ccfd2dec890222763472ae8136777c9d7358777bb66e91ea5122495f559ea2d"

        /// {server}  derive secret for handshake "tls13 derived": PRK (32 octets)
        static let deriveSecretForHandshakePRK: String = "9b2188e9b2fc6d64d71dc329900e20bb41915000f678aa839cbb797cb7d8332c"

        /// {server}  derive secret for handshake "tls13 derived": hash (32 octets)
        static let deriveSecretForHandshakeHash: String = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

        /// {server}  derive secret for handshake "tls13 derived": info (49 octets)
        static let deriveSecretForHandshakeInfo: String = "00200d746c733133206465726976656420e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

        /// {server}  derive secret for handshake "tls13 derived": expanded (32 octets)
        static let deriveSecretForHandshake: String = "5f1790bbd82c5e7d376ed2e1e52f8e6038c9346db61b43be9a52f77ef3998e80"

        /// {server}  extract secret "handshake": salt (32 octets)
        static let handshakeSecretSalt: String = "5f1790bbd82c5e7d376ed2e1e52f8e6038c9346db61b43be9a52f77ef3998e80"

        /// {server}  extract secret "handshake": IKM (32 octets)
        static let sharedSecret: String = "f44194756ff9ec9d25180635d66ea6824c6ab3bf179977be37f723570e7ccb2e"

        /// {server}  extract secret "handshake": secret (32 octets)
        static let handshakeSecret: String = "005cb112fd8eb4ccc623bb88a07c64b3ede1605363fc7d0df8c7ce4ff0fb4ae6"

        /// {server}  derive secret "tls13 c hs traffic": PRK (32 octets)
        static let clientHandshakeTrafficSecretPRK: String = "005cb112fd8eb4ccc623bb88a07c64b3ede1605363fc7d0df8c7ce4ff0fb4ae6"

        /// {server}  derive secret "tls13 c hs traffic": hash (32 octets)
        static let clientHandshakeTrafficSecretHash: String = "f736cb34fe25e701551bee6fd24c1cc7102a7daf9405cb15d97aafe16f757d03"

        /// {server}  derive secret "tls13 c hs traffic": info (54 octets)
        static let clientHandshakeTrafficSecretInfo: String = "002012746c7331332063206873207472616666696320f736cb34fe25e701551bee6fd24c1cc7102a7daf9405cb15d97aafe16f757d03"

        /// {server}  derive secret "tls13 c hs traffic": expanded (32 octets)
        static let clientHandshakeTrafficSecret: String = "2faac08f851d35fea3604fcb4de82dc62c9b164a70974d0462e27f1ab278700f"

        /// {server}  derive secret "tls13 s hs traffic": PRK (32 octets)
        static let serverHandshakeTrafficSecretPRK: String = "005cb112fd8eb4ccc623bb88a07c64b3ede1605363fc7d0df8c7ce4ff0fb4ae6"

        /// {server}  derive secret "tls13 s hs traffic": hash (32 octets)
        static let serverHandshakeTrafficSecretHash: String = "f736cb34fe25e701551bee6fd24c1cc7102a7daf9405cb15d97aafe16f757d03"

        /// {server}  derive secret "tls13 s hs traffic": info (54 octets)
        static let serverHandshakeTrafficSecretInfo: String = "002012746c7331332073206873207472616666696320f736cb34fe25e701551bee6fd24c1cc7102a7daf9405cb15d97aafe16f757d03"

        /// {server}  derive secret "tls13 s hs traffic": expanded (32 octets)
        static let serverHandshakeTrafficSecret: String = "fe927ae271312e8bf0275b581c54eef020450dc4ecffaa05a1a35d27518e7803"

        /// {server}  derive secret for master "tls13 derived": PRK (32 octets)
        static let deriveSecretForMasterPRK: String = "005cb112fd8eb4ccc623bb88a07c64b3ede1605363fc7d0df8c7ce4ff0fb4ae6"

        /// {server}  derive secret for master "tls13 derived": hash (32 octets)
        static let deriveSecretForMasterHash: String = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

        /// {server}  derive secret for master "tls13 derived": info (49 octets)
        static let deriveSecretForMasterInfo: String = "00200d746c733133206465726976656420e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

        /// {server}  derive secret for master "tls13 derived": expanded (32 octets)
        static let deriveSecretForMaster: String = "e2f16030251df0874ba19b9aba257610bc6d531c1dd206df0ca6e84ae2a26742"

        /// {server}  extract secret "master": salt (32 octets)
        static let masterSecretSalt: String = "e2f16030251df0874ba19b9aba257610bc6d531c1dd206df0ca6e84ae2a26742"

        /// {server}  extract secret "master": IKM (32 octets)
        static let masterSecretIKM: String = "0000000000000000000000000000000000000000000000000000000000000000"

        /// {server}  extract secret "master": secret (32 octets)
        static let masterSecret: String = "e2d32d4ed66dd37897a0e80c84107503ce58bf8aad4cb55a5002d77ecb890ece"

        /// {server}  send handshake record: payload (96 octets)
        static let serverHelloRecordPayload: String = "0200005c03033ccfd2dec890222763472ae8136777c9d7358777bb66e91ea5122495f559ea2d00130100003400290002000000330024001d0020121761ee42c333e1b9e77b60dd57c2053cd94512ab47f115e86eff50942cea31002b00020304"

        /// {server}  send handshake record: complete record (101 octets)
        static let serverHelloRecord: String = "16030300600200005c03033ccfd2dec890222763472ae8136777c9d7358777bb66e91ea5122495f559ea2d00130100003400290002000000330024001d0020121761ee42c333e1b9e77b60dd57c2053cd94512ab47f115e86eff50942cea31002b00020304"

        /// {server}  derive write traffic keys for handshake data: PRK (32 octets)
        static let serverHandshakeWriteKeysPRK: String = "fe927ae271312e8bf0275b581c54eef020450dc4ecffaa05a1a35d27518e7803"

        /// {server}  derive write traffic keys for handshake data: key info (13 octets)
        static let serverHandshakeWriteKeyInfo: String = "001009746c733133206b657900"

        /// {server}  derive write traffic keys for handshake data: key expanded (16 octets)
        static let serverHandshakeWriteKey: String = "27c6bdc0a3dcea39a47326d79bc9e4ee"

        /// {server}  derive write traffic keys for handshake data: iv info (12 octets)
        static let serverHandshakeWriteIVInfo: String = "000c08746c73313320697600"

        /// {server}  derive write traffic keys for handshake data: iv expanded (12 octets)
        static let serverHandshakeWriteIV: String = "9569ecdd4d0536705e9ef725"

        /// {server}  construct an EncryptedExtensions handshake message: EncryptedExtensions (44 octets)
        static let encryptedExtensions: String = "080000280026000a00140012001d00170018001901000101010201030104001c0002400100000000002a0000"

        /// {server}  calculate finished "tls13 finished": PRK (32 octets)
        static let serverFinishedKeyPRK: String = "fe927ae271312e8bf0275b581c54eef020450dc4ecffaa05a1a35d27518e7803"

        /// {server}  calculate finished "tls13 finished": hash (0 octets)
        static let serverFinishedKeyHash: String = ""

        /// {server}  calculate finished "tls13 finished": info (18 octets)
        static let serverFinishedKeyInfo: String = "00200e746c7331332066696e697368656400"

        /// {server}  calculate finished "tls13 finished": expanded (32 octets)
        static let serverFinishedKey: String = "4bb74cae7a5dc8914604c0bfbe2f0c062396883922bec8a15e2a9b532a5d392c"

        /// {server}  calculate finished "tls13 finished": finished (32 octets)
        static let serverFinishedVerifyData: String = "48d3e0e1b3d907c6acff145e16090388c77b05c050b634ab1a88bbd0dd1a34b2"

        /// {server}  construct a Finished handshake message: Finished (36 octets)
        static let serverFinished: String = "1400002048d3e0e1b3d907c6acff145e16090388c77b05c050b634ab1a88bbd0dd1a34b2"

        /// {server}  send handshake record: payload (80 octets)
        /// - Note: Plaintext of the encrypted record: EncryptedExtensions || Finished.
        static let serverEncryptedHandshakeRecordPayload: String = "080000280026000a00140012001d00170018001901000101010201030104001c0002400100000000002a00001400002048d3e0e1b3d907c6acff145e16090388c77b05c050b634ab1a88bbd0dd1a34b2"

        /// {server}  send handshake record: complete record (102 octets)
        static let serverEncryptedHandshakeRecord: String = "1703030061dc48237b4b879f50d0d4d262ea8b4716eb40ddc1eb957e11126e8a7149c2d012d37a7115957e64ce30008b9e0323f2c05a9c1c77b4f37849a695ab255060a33fee770ca95cb8486bfd0843b87024865ca35cc41c4e515c64dcb1369f98635bc7a5"

        /// {server}  derive secret "tls13 c ap traffic": PRK (32 octets)
        static let clientApplicationTrafficSecret0PRK: String = "e2d32d4ed66dd37897a0e80c84107503ce58bf8aad4cb55a5002d77ecb890ece"

        /// {server}  derive secret "tls13 c ap traffic": hash (32 octets)
        static let clientApplicationTrafficSecret0Hash: String = "b0aeffc46a2cfe33114e6fd7d51f9f04b1ca3c497dab08934a774a9d9ad7dbf3"

        /// {server}  derive secret "tls13 c ap traffic": info (54 octets)
        static let clientApplicationTrafficSecret0Info: String = "002012746c7331332063206170207472616666696320b0aeffc46a2cfe33114e6fd7d51f9f04b1ca3c497dab08934a774a9d9ad7dbf3"

        /// {server}  derive secret "tls13 c ap traffic": expanded (32 octets)
        static let clientApplicationTrafficSecret0: String = "2abbf2b8e381d23dbebe1dd2a7d16a8bf484cb4950d23fb7fb7fa8547062d9a1"

        /// {server}  derive secret "tls13 s ap traffic": PRK (32 octets)
        static let serverApplicationTrafficSecret0PRK: String = "e2d32d4ed66dd37897a0e80c84107503ce58bf8aad4cb55a5002d77ecb890ece"

        /// {server}  derive secret "tls13 s ap traffic": hash (32 octets)
        static let serverApplicationTrafficSecret0Hash: String = "b0aeffc46a2cfe33114e6fd7d51f9f04b1ca3c497dab08934a774a9d9ad7dbf3"

        /// {server}  derive secret "tls13 s ap traffic": info (54 octets)
        static let serverApplicationTrafficSecret0Info: String = "002012746c7331332073206170207472616666696320b0aeffc46a2cfe33114e6fd7d51f9f04b1ca3c497dab08934a774a9d9ad7dbf3"

        /// {server}  derive secret "tls13 s ap traffic": expanded (32 octets)
        static let serverApplicationTrafficSecret0: String = "cc21f1bf8feb7dd5fa505bd9c4b468a9984d554a993dc49e6d285598fb672691"

        /// {server}  derive secret "tls13 exp master": PRK (32 octets)
        static let exporterMasterSecretPRK: String = "e2d32d4ed66dd37897a0e80c84107503ce58bf8aad4cb55a5002d77ecb890ece"

        /// {server}  derive secret "tls13 exp master": hash (32 octets)
        static let exporterMasterSecretHash: String = "b0aeffc46a2cfe33114e6fd7d51f9f04b1ca3c497dab08934a774a9d9ad7dbf3"

        /// {server}  derive secret "tls13 exp master": info (52 octets)
        static let exporterMasterSecretInfo: String = "002010746c73313320657870206d617374657220b0aeffc46a2cfe33114e6fd7d51f9f04b1ca3c497dab08934a774a9d9ad7dbf3"

        /// {server}  derive secret "tls13 exp master": expanded (32 octets)
        static let exporterMasterSecret: String = "3fd93d4ffddc98e64b14dd107aedf8ee4add23f4510f58a4592d0b201bee56b4"

        /// {server}  derive write traffic keys for application data: PRK (32 octets)
        static let serverApplicationWriteKeysPRK: String = "cc21f1bf8feb7dd5fa505bd9c4b468a9984d554a993dc49e6d285598fb672691"

        /// {server}  derive write traffic keys for application data: key info (13 octets)
        static let serverApplicationWriteKeyInfo: String = "001009746c733133206b657900"

        /// {server}  derive write traffic keys for application data: key expanded (16 octets)
        static let serverApplicationWriteKey: String = "e857c690a34c5a9129d833619684f95e"

        /// {server}  derive write traffic keys for application data: iv info (12 octets)
        static let serverApplicationWriteIVInfo: String = "000c08746c73313320697600"

        /// {server}  derive write traffic keys for application data: iv expanded (12 octets)
        static let serverApplicationWriteIV: String = "0685d6b561aab9ef1013faf9"

        /// {client}  derive secret for handshake "tls13 derived": PRK (32 octets)
        /// - Note: The client's own (identical) computation of the derivation shown earlier for the server.
        static let clientDeriveSecretForHandshakePRK: String = "9b2188e9b2fc6d64d71dc329900e20bb41915000f678aa839cbb797cb7d8332c"

        /// {client}  derive secret for handshake "tls13 derived": hash (32 octets)
        /// - Note: The client's own (identical) computation of the derivation shown earlier for the server.
        static let clientDeriveSecretForHandshakeHash: String = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

        /// {client}  derive secret for handshake "tls13 derived": info (49 octets)
        /// - Note: The client's own (identical) computation of the derivation shown earlier for the server.
        static let clientDeriveSecretForHandshakeInfo: String = "00200d746c733133206465726976656420e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

        /// {client}  derive secret for handshake "tls13 derived": expanded (32 octets)
        /// - Note: The client's own (identical) computation of the derivation shown earlier for the server.
        static let clientDeriveSecretForHandshake: String = "5f1790bbd82c5e7d376ed2e1e52f8e6038c9346db61b43be9a52f77ef3998e80"

        /// {client}  construct an EndOfEarlyData handshake message: EndOfEarlyData (4 octets)
        static let endOfEarlyData: String = "05000000"

        /// {client}  send handshake record: payload (4 octets)
        static let endOfEarlyDataRecordPayload: String = "05000000"

        /// {client}  send handshake record: complete record (26 octets)
        static let endOfEarlyDataRecord: String = "1703030015aca6fc944841298df99593725f9bf9754429b12f09"

        /// {client}  derive write traffic keys for handshake data: PRK (32 octets)
        static let clientHandshakeWriteKeysPRK: String = "2faac08f851d35fea3604fcb4de82dc62c9b164a70974d0462e27f1ab278700f"

        /// {client}  derive write traffic keys for handshake data: key info (13 octets)
        static let clientHandshakeWriteKeyInfo: String = "001009746c733133206b657900"

        /// {client}  derive write traffic keys for handshake data: key expanded (16 octets)
        static let clientHandshakeWriteKey: String = "b1530806f4adfeac83f1413032bbfa82"

        /// {client}  derive write traffic keys for handshake data: iv info (12 octets)
        static let clientHandshakeWriteIVInfo: String = "000c08746c73313320697600"

        /// {client}  derive write traffic keys for handshake data: iv expanded (12 octets)
        static let clientHandshakeWriteIV: String = "eb50c16be7654abf99dd06d9"

        /// {client}  calculate finished "tls13 finished": PRK (32 octets)
        static let clientFinishedKeyPRK: String = "2faac08f851d35fea3604fcb4de82dc62c9b164a70974d0462e27f1ab278700f"

        /// {client}  calculate finished "tls13 finished": hash (0 octets)
        static let clientFinishedKeyHash: String = ""

        /// {client}  calculate finished "tls13 finished": info (18 octets)
        static let clientFinishedKeyInfo: String = "00200e746c7331332066696e697368656400"

        /// {client}  calculate finished "tls13 finished": expanded (32 octets)
        static let clientFinishedKey: String = "5ace394c26980d581243f627d1150ae27e37fa52364e0a7f20ac686d09cd0e8e"

        /// {client}  calculate finished "tls13 finished": finished (32 octets)
        static let clientFinishedVerifyData: String = "7230a9c952c25cd6138fc5e6628308c41c5335dd81b9f96bcea50fd32bda416d"

        /// {client}  construct a Finished handshake message: Finished (36 octets)
        static let clientFinished: String = "140000207230a9c952c25cd6138fc5e6628308c41c5335dd81b9f96bcea50fd32bda416d"

        /// {client}  send handshake record: payload (36 octets)
        static let clientFinishedRecordPayload: String = "140000207230a9c952c25cd6138fc5e6628308c41c5335dd81b9f96bcea50fd32bda416d"

        /// {client}  send handshake record: complete record (58 octets)
        static let clientFinishedRecord: String = "170303003500f8b467d14cf22a4b3f0b6ae0d8e6cc8d08e0db3515ef5c2bdf1922eafbb70009964716d834fb70c3d2a56c5b1f5f6bdba6c333cf"

        /// {client}  derive write traffic keys for application data: PRK (32 octets)
        static let clientApplicationWriteKeysPRK: String = "2abbf2b8e381d23dbebe1dd2a7d16a8bf484cb4950d23fb7fb7fa8547062d9a1"

        /// {client}  derive write traffic keys for application data: key info (13 octets)
        static let clientApplicationWriteKeyInfo: String = "001009746c733133206b657900"

        /// {client}  derive write traffic keys for application data: key expanded (16 octets)
        static let clientApplicationWriteKey: String = "3cf122f301c6358ca7989553250efd72"

        /// {client}  derive write traffic keys for application data: iv info (12 octets)
        static let clientApplicationWriteIVInfo: String = "000c08746c73313320697600"

        /// {client}  derive write traffic keys for application data: iv expanded (12 octets)
        static let clientApplicationWriteIV: String = "ab1aec26aa78b8fc1176b9ac"

        /// {client}  derive secret "tls13 res master": PRK (32 octets)
        static let resumptionMasterSecretPRK: String = "e2d32d4ed66dd37897a0e80c84107503ce58bf8aad4cb55a5002d77ecb890ece"

        /// {client}  derive secret "tls13 res master": hash (32 octets)
        static let resumptionMasterSecretHash: String = "c3c122e0bd907a4a3ff6112d8fd53dbf89c773d9552e8b6b9d56d361b3a97bf6"

        /// {client}  derive secret "tls13 res master": info (52 octets)
        static let resumptionMasterSecretInfo: String = "002010746c73313320726573206d617374657220c3c122e0bd907a4a3ff6112d8fd53dbf89c773d9552e8b6b9d56d361b3a97bf6"

        /// {client}  derive secret "tls13 res master": expanded (32 octets)
        static let resumptionMasterSecret: String = "5e95bdf1f89005ea2e9aa0ba85e728e3c19c5fe0c699e3f5bee59faebd0b5406"

        /// {client}  send application_data record: payload (50 octets)
        static let clientApplicationDataRecordPayload: String = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031"

        /// {client}  send application_data record: complete record (72 octets)
        static let clientApplicationDataRecord: String = "1703030043b1cebce242aa201be9ae5e1cb2a9aa4b33d4e866af1edb068919237741aa031d7a74d491c99b9d4e232b74206bc6fbaa04fe78be44a9b4f54320a17eb76992afac3103"

        /// {server}  send application_data record: payload (50 octets)
        static let serverApplicationDataRecordPayload: String = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031"

        /// {server}  send application_data record: complete record (72 octets)
        static let serverApplicationDataRecord: String = "1703030043275e9f20acff57bc000657d3867df039cccf79047884cf75771746f740b5a83f462a0954c3581393a203a25a7dd14141ef1a37900cdb62ff62dee1ba39ab2590cbf194"

        /// {client}  send alert record: payload (2 octets)
        static let clientAlertRecordPayload: String = "0100"

        /// {client}  send alert record: complete record (24 octets)
        static let clientAlertRecord: String = "17030300130facce3246bdfc6369838d6a82ae6de5d422dc"

        /// {server}  send alert record: payload (2 octets)
        static let serverAlertRecordPayload: String = "0100"

        /// {server}  send alert record: complete record (24 octets)
        static let serverAlertRecord: String = "17030300135b18af444e8e1eec7158fb62d8f2577d37ba5d"
    }

    /// §5 HelloRetryRequest (client offers x25519, server asks for P-256).
    enum HelloRetry {
        /// {client}  create an ephemeral x25519 key pair: private key (32 octets)
        /// - Note: x25519 key share sent in the first ClientHello (rejected by the HelloRetryRequest).
        static let clientEphemeralPrivateKey: String = "0ed02f8e8117efc75ca7ac32aa7e34eda64cdc0ddad154a5e85289f959f63204"

        /// {client}  create an ephemeral x25519 key pair: public key (32 octets)
        static let clientEphemeralPublicKey: String = "e8e8e3f3b93a25ed97a14a7dcacb8a272c6288e585c6484d05262fcad062ad1f"

        /// {client}  construct a ClientHello handshake message: ClientHello (180 octets)
        static let clientHello: String = "010000b00303b0b1c5a5aa37c5919f2ed1d5c6fff7fcb7849716945a2b8cee9258a346677b6f000006130113031302010000810000000b0009000006736572766572ff01000100000a00080006001d00170018003300260024001d0020e8e8e3f3b93a25ed97a14a7dcacb8a272c6288e585c6484d05262fcad062ad1f002b0003020304000d0020001e040305030603020308040805080604010501060102010402050206020202002d00020101001c00024001"

        /// Derived, not a separate hex block in the RFC: ClientHello bytes 6..<38 (Random) (32 octets)
        static let clientRandom: String = "b0b1c5a5aa37c5919f2ed1d5c6fff7fcb7849716945a2b8cee9258a346677b6f"

        /// {client}  send handshake record: payload (180 octets)
        static let clientHelloRecordPayload: String = "010000b00303b0b1c5a5aa37c5919f2ed1d5c6fff7fcb7849716945a2b8cee9258a346677b6f000006130113031302010000810000000b0009000006736572766572ff01000100000a00080006001d00170018003300260024001d0020e8e8e3f3b93a25ed97a14a7dcacb8a272c6288e585c6484d05262fcad062ad1f002b0003020304000d0020001e040305030603020308040805080604010501060102010402050206020202002d00020101001c00024001"

        /// {client}  send handshake record: complete record (185 octets)
        static let clientHelloRecord: String = "16030100b4010000b00303b0b1c5a5aa37c5919f2ed1d5c6fff7fcb7849716945a2b8cee9258a346677b6f000006130113031302010000810000000b0009000006736572766572ff01000100000a00080006001d00170018003300260024001d0020e8e8e3f3b93a25ed97a14a7dcacb8a272c6288e585c6484d05262fcad062ad1f002b0003020304000d0020001e040305030603020308040805080604010501060102010402050206020202002d00020101001c00024001"

        /// {server}  construct a ServerHello handshake message: ServerHello (176 octets)
        /// - Note: The HelloRetryRequest; the RFC labels it ServerHello because it uses the same handshake message type.
        static let helloRetryRequest: String = "020000ac0303cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c001301000084003300020017002c0074007271dcd04bb88bc3189119398a00000000eefafc76c146b823b096f8aacad365dd0030953f4edf625636e5f21bb2e23fcc654b1b5b40318d10d137abcbb87574e36e8a1f025f7dfa5d6e50781b5eda4aa15b0c8be778257d16aa3030e9e7841dd9e4c0342267e8ca0caf571fb2b7cff0f934b0002b00020304"

        /// Derived, not a separate hex block in the RFC: HelloRetryRequest bytes 6..<38 (Random, the special HRR value) (32 octets)
        static let helloRetryRequestRandom: String = "cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c"

        /// Derived, not a separate hex block in the RFC: HelloRetryRequest cookie extension (0x002c), the 114-byte cookie value without its 2-byte length prefix (114 octets)
        static let cookie: String = "71dcd04bb88bc3189119398a00000000eefafc76c146b823b096f8aacad365dd0030953f4edf625636e5f21bb2e23fcc654b1b5b40318d10d137abcbb87574e36e8a1f025f7dfa5d6e50781b5eda4aa15b0c8be778257d16aa3030e9e7841dd9e4c0342267e8ca0caf571fb2b7cff0f934b0"

        /// {server}  send handshake record: payload (176 octets)
        static let helloRetryRequestRecordPayload: String = "020000ac0303cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c001301000084003300020017002c0074007271dcd04bb88bc3189119398a00000000eefafc76c146b823b096f8aacad365dd0030953f4edf625636e5f21bb2e23fcc654b1b5b40318d10d137abcbb87574e36e8a1f025f7dfa5d6e50781b5eda4aa15b0c8be778257d16aa3030e9e7841dd9e4c0342267e8ca0caf571fb2b7cff0f934b0002b00020304"

        /// {server}  send handshake record: complete record (181 octets)
        static let helloRetryRequestRecord: String = "16030300b0020000ac0303cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c001301000084003300020017002c0074007271dcd04bb88bc3189119398a00000000eefafc76c146b823b096f8aacad365dd0030953f4edf625636e5f21bb2e23fcc654b1b5b40318d10d137abcbb87574e36e8a1f025f7dfa5d6e50781b5eda4aa15b0c8be778257d16aa3030e9e7841dd9e4c0342267e8ca0caf571fb2b7cff0f934b0002b00020304"

        /// {client}  create an ephemeral P-256 key pair: private key (32 octets)
        static let clientP256EphemeralPrivateKey: String = "ab5473467e19346ceb0a0414e41da21d4d2445bc3025afe97c4e8dc8d513da39"

        /// {client}  create an ephemeral P-256 key pair: public key (65 octets)
        static let clientP256EphemeralPublicKey: String = "04a6da7392ec591e17abfd535964b99894d13befb221b3def2ebe3830eac8f0151812677c4d6d2237e85cf01d6910cfb83954e76ba7352830534159897e8065780"

        /// {client}  construct a ClientHello handshake message: ClientHello (512 octets)
        static let secondClientHello: String = "010001fc0303b0b1c5a5aa37c5919f2ed1d5c6fff7fcb7849716945a2b8cee9258a346677b6f000006130113031302010001cd0000000b0009000006736572766572ff01000100000a00080006001d001700180033004700450017004104a6da7392ec591e17abfd535964b99894d13befb221b3def2ebe3830eac8f0151812677c4d6d2237e85cf01d6910cfb83954e76ba7352830534159897e8065780002b0003020304000d0020001e040305030603020308040805080604010501060102010402050206020202002c0074007271dcd04bb88bc3189119398a00000000eefafc76c146b823b096f8aacad365dd0030953f4edf625636e5f21bb2e23fcc654b1b5b40318d10d137abcbb87574e36e8a1f025f7dfa5d6e50781b5eda4aa15b0c8be778257d16aa3030e9e7841dd9e4c0342267e8ca0caf571fb2b7cff0f934b0002d00020101001c00024001001500af00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"

        /// {client}  send handshake record: payload (512 octets)
        static let secondClientHelloRecordPayload: String = "010001fc0303b0b1c5a5aa37c5919f2ed1d5c6fff7fcb7849716945a2b8cee9258a346677b6f000006130113031302010001cd0000000b0009000006736572766572ff01000100000a00080006001d001700180033004700450017004104a6da7392ec591e17abfd535964b99894d13befb221b3def2ebe3830eac8f0151812677c4d6d2237e85cf01d6910cfb83954e76ba7352830534159897e8065780002b0003020304000d0020001e040305030603020308040805080604010501060102010402050206020202002c0074007271dcd04bb88bc3189119398a00000000eefafc76c146b823b096f8aacad365dd0030953f4edf625636e5f21bb2e23fcc654b1b5b40318d10d137abcbb87574e36e8a1f025f7dfa5d6e50781b5eda4aa15b0c8be778257d16aa3030e9e7841dd9e4c0342267e8ca0caf571fb2b7cff0f934b0002d00020101001c00024001001500af00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"

        /// {client}  send handshake record: complete record (517 octets)
        static let secondClientHelloRecord: String = "1603030200010001fc0303b0b1c5a5aa37c5919f2ed1d5c6fff7fcb7849716945a2b8cee9258a346677b6f000006130113031302010001cd0000000b0009000006736572766572ff01000100000a00080006001d001700180033004700450017004104a6da7392ec591e17abfd535964b99894d13befb221b3def2ebe3830eac8f0151812677c4d6d2237e85cf01d6910cfb83954e76ba7352830534159897e8065780002b0003020304000d0020001e040305030603020308040805080604010501060102010402050206020202002c0074007271dcd04bb88bc3189119398a00000000eefafc76c146b823b096f8aacad365dd0030953f4edf625636e5f21bb2e23fcc654b1b5b40318d10d137abcbb87574e36e8a1f025f7dfa5d6e50781b5eda4aa15b0c8be778257d16aa3030e9e7841dd9e4c0342267e8ca0caf571fb2b7cff0f934b0002d00020101001c00024001001500af00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"

        // {server}  extract secret "early": salt:  0 (all zero octets)
        //   (no hex block in the RFC; HKDF-Extract with a zero salt, i.e. 32 zero octets for SHA-256)
        /// {server}  extract secret "early": IKM (32 octets)
        /// - Note: All-zero IKM (no PSK).
        static let earlySecretIKM: String = "0000000000000000000000000000000000000000000000000000000000000000"

        /// {server}  extract secret "early": secret (32 octets)
        static let earlySecret: String = "33ad0a1c607ec03b09e6cd9893680ce210adf300aa1f2660e1b22e10f170f92a"

        /// {server}  create an ephemeral P-256 key pair: private key (32 octets)
        /// - Note: P-256 (secp256r1) private scalar.
        static let serverEphemeralPrivateKey: String = "8c510601f9765bfb8ed693449a48989859b5cfa879cb9f5443c41c5ff10634ed"

        /// {server}  create an ephemeral P-256 key pair: public key (65 octets)
        /// - Note: P-256 uncompressed point.
        static let serverEphemeralPublicKey: String = "04583e054b7a66672ae020ad9d2686fcc85b5ad41a134a0f03ee72b893052bd85b4c8de6776f5b04ac07d83540eab3e3d9c547bc6528c4317d294686093a6cad7d"

        /// {server}  construct a ServerHello handshake message: ServerHello (123 octets)
        static let serverHello: String = "020000770303bb341d847fd789c47c387172dc0c9bf147fccacb5043d86ca4c598d3ff571b9800130100004f003300450017004104583e054b7a66672ae020ad9d2686fcc85b5ad41a134a0f03ee72b893052bd85b4c8de6776f5b04ac07d83540eab3e3d9c547bc6528c4317d294686093a6cad7d002b00020304"

        /// Derived, not a separate hex block in the RFC: ServerHello bytes 6..<38 (Random) (32 octets)
        static let serverRandom: String = "bb341d847fd789c47c387172dc0c9bf147fccacb5043d86ca4c598d3ff571b98"

        /// {server}  derive secret for handshake "tls13 derived": PRK (32 octets)
        static let deriveSecretForHandshakePRK: String = "33ad0a1c607ec03b09e6cd9893680ce210adf300aa1f2660e1b22e10f170f92a"

        /// {server}  derive secret for handshake "tls13 derived": hash (32 octets)
        static let deriveSecretForHandshakeHash: String = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

        /// {server}  derive secret for handshake "tls13 derived": info (49 octets)
        static let deriveSecretForHandshakeInfo: String = "00200d746c733133206465726976656420e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

        /// {server}  derive secret for handshake "tls13 derived": expanded (32 octets)
        static let deriveSecretForHandshake: String = "6f2615a108c702c5678f54fc9dbab69716c076189c48250cebeac3576c3611ba"

        /// {server}  extract secret "handshake": salt (32 octets)
        static let handshakeSecretSalt: String = "6f2615a108c702c5678f54fc9dbab69716c076189c48250cebeac3576c3611ba"

        /// {server}  extract secret "handshake": IKM (32 octets)
        static let sharedSecret: String = "c142ce13ca11b5c2233652e63ad3d97844f1621fbfb9de69d547dc8fedeabeb4"

        /// {server}  extract secret "handshake": secret (32 octets)
        static let handshakeSecret: String = "ce022e5e6e81e50736d773f2d3adfce8220d049bf510f0dbfac927ef4243b148"

        /// {server}  derive secret "tls13 c hs traffic": PRK (32 octets)
        static let clientHandshakeTrafficSecretPRK: String = "ce022e5e6e81e50736d773f2d3adfce8220d049bf510f0dbfac927ef4243b148"

        /// {server}  derive secret "tls13 c hs traffic": hash (32 octets)
        static let clientHandshakeTrafficSecretHash: String = "8aa8e828ec2f8a884fec95a3139de01c15a3daa7ff5bfc3f4bfcc21b438d7bf8"

        /// {server}  derive secret "tls13 c hs traffic": info (54 octets)
        static let clientHandshakeTrafficSecretInfo: String = "002012746c73313320632068732074726166666963208aa8e828ec2f8a884fec95a3139de01c15a3daa7ff5bfc3f4bfcc21b438d7bf8"

        /// {server}  derive secret "tls13 c hs traffic": expanded (32 octets)
        static let clientHandshakeTrafficSecret: String = "158aa7ab8855073582b41d674b4055cabcc534728f659314861b4e08e2011566"

        /// {server}  derive secret "tls13 s hs traffic": PRK (32 octets)
        static let serverHandshakeTrafficSecretPRK: String = "ce022e5e6e81e50736d773f2d3adfce8220d049bf510f0dbfac927ef4243b148"

        /// {server}  derive secret "tls13 s hs traffic": hash (32 octets)
        static let serverHandshakeTrafficSecretHash: String = "8aa8e828ec2f8a884fec95a3139de01c15a3daa7ff5bfc3f4bfcc21b438d7bf8"

        /// {server}  derive secret "tls13 s hs traffic": info (54 octets)
        static let serverHandshakeTrafficSecretInfo: String = "002012746c73313320732068732074726166666963208aa8e828ec2f8a884fec95a3139de01c15a3daa7ff5bfc3f4bfcc21b438d7bf8"

        /// {server}  derive secret "tls13 s hs traffic": expanded (32 octets)
        static let serverHandshakeTrafficSecret: String = "3403e781e2af7b6508da28574f6e95a1abf162de83a97927c37672a4a0cef8a1"

        /// {server}  derive secret for master "tls13 derived": PRK (32 octets)
        static let deriveSecretForMasterPRK: String = "ce022e5e6e81e50736d773f2d3adfce8220d049bf510f0dbfac927ef4243b148"

        /// {server}  derive secret for master "tls13 derived": hash (32 octets)
        static let deriveSecretForMasterHash: String = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

        /// {server}  derive secret for master "tls13 derived": info (49 octets)
        static let deriveSecretForMasterInfo: String = "00200d746c733133206465726976656420e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

        /// {server}  derive secret for master "tls13 derived": expanded (32 octets)
        static let deriveSecretForMaster: String = "ad1cbcd3a0dc7053eeb3ed3a47901d16a9fc63a73c64beb567481a7dfb3a2cb3"

        /// {server}  extract secret "master": salt (32 octets)
        static let masterSecretSalt: String = "ad1cbcd3a0dc7053eeb3ed3a47901d16a9fc63a73c64beb567481a7dfb3a2cb3"

        /// {server}  extract secret "master": IKM (32 octets)
        static let masterSecretIKM: String = "0000000000000000000000000000000000000000000000000000000000000000"

        /// {server}  extract secret "master": secret (32 octets)
        static let masterSecret: String = "1131545d0baf79ddce9b87f06945781a57dd18ef378dcd2060f8f9a569027ed8"

        /// {server}  send handshake record: payload (123 octets)
        static let serverHelloRecordPayload: String = "020000770303bb341d847fd789c47c387172dc0c9bf147fccacb5043d86ca4c598d3ff571b9800130100004f003300450017004104583e054b7a66672ae020ad9d2686fcc85b5ad41a134a0f03ee72b893052bd85b4c8de6776f5b04ac07d83540eab3e3d9c547bc6528c4317d294686093a6cad7d002b00020304"

        /// {server}  send handshake record: complete record (128 octets)
        static let serverHelloRecord: String = "160303007b020000770303bb341d847fd789c47c387172dc0c9bf147fccacb5043d86ca4c598d3ff571b9800130100004f003300450017004104583e054b7a66672ae020ad9d2686fcc85b5ad41a134a0f03ee72b893052bd85b4c8de6776f5b04ac07d83540eab3e3d9c547bc6528c4317d294686093a6cad7d002b00020304"

        /// {server}  derive write traffic keys for handshake data: PRK (32 octets)
        static let serverHandshakeWriteKeysPRK: String = "3403e781e2af7b6508da28574f6e95a1abf162de83a97927c37672a4a0cef8a1"

        /// {server}  derive write traffic keys for handshake data: key info (13 octets)
        static let serverHandshakeWriteKeyInfo: String = "001009746c733133206b657900"

        /// {server}  derive write traffic keys for handshake data: key expanded (16 octets)
        static let serverHandshakeWriteKey: String = "4646bfac1712c426cd78d8a24a8a6f6b"

        /// {server}  derive write traffic keys for handshake data: iv info (12 octets)
        static let serverHandshakeWriteIVInfo: String = "000c08746c73313320697600"

        /// {server}  derive write traffic keys for handshake data: iv expanded (12 octets)
        static let serverHandshakeWriteIV: String = "c7d395c08d62f297d13768ea"

        /// {server}  construct an EncryptedExtensions handshake message: EncryptedExtensions (28 octets)
        static let encryptedExtensions: String = "080000180016000a0008000600170018001d001c0002400100000000"

        /// {server}  construct a Certificate handshake message: Certificate (445 octets)
        static let certificate: String = "0b0001b9000001b50001b0308201ac30820115a003020102020102300d06092a864886f70d01010b0500300e310c300a06035504031303727361301e170d3136303733303031323335395a170d3236303733303031323335395a300e310c300a0603550403130372736130819f300d06092a864886f70d010101050003818d0030818902818100b4bb498f8279303d980836399b36c6988c0c68de55e1bdb826d3901a2461eafd2de49a91d015abbc9a95137ace6c1af19eaa6af98c7ced43120998e187a80ee0ccb0524b1b018c3e0b63264d449a6d38e22a5fda430846748030530ef0461c8ca9d9efbfae8ea6d1d03e2bd193eff0ab9a8002c47428a6d35a8d88d79f7f1e3f0203010001a31a301830090603551d1304023000300b0603551d0f0404030205a0300d06092a864886f70d01010b05000381810085aad2a0e5b9276b908c65f73a7267170618a54c5f8a7b337d2df7a594365417f2eae8f8a58c8f8172f9319cf36b7fd6c55b80f21a03015156726096fd335e5e67f2dbf102702e608ccae6bec1fc63a42a99be5c3eb7107c3c54e9b9eb2bd5203b1c3b84e0a8b2f759409ba3eac9d91d402dcc0cc8f8961229ac9187b42b4de10000"

        /// {server}  construct a CertificateVerify handshake message: CertificateVerify (136 octets)
        static let certificateVerify: String = "0f0000840804008033ab13d4462707231b5dcae6c8190b63d1dabc74f28c395370da0b07e5b83066d0246a31acd95df475bfd799a4a70d33ad93d3a317a9b2c0d237a5685b219e774112e391a247607d1aeff1bbd0a39f382ee1a5fe88ae99ec59228e6497e45d48ce275a6d5ef40d169fb6f9d33b052ed3dcdd6b5a48baafffbcb290128415bd38"

        /// {server}  calculate finished "tls13 finished": PRK (32 octets)
        static let serverFinishedKeyPRK: String = "3403e781e2af7b6508da28574f6e95a1abf162de83a97927c37672a4a0cef8a1"

        /// {server}  calculate finished "tls13 finished": hash (0 octets)
        static let serverFinishedKeyHash: String = ""

        /// {server}  calculate finished "tls13 finished": info (18 octets)
        static let serverFinishedKeyInfo: String = "00200e746c7331332066696e697368656400"

        /// {server}  calculate finished "tls13 finished": expanded (32 octets)
        static let serverFinishedKey: String = "e7f8bb3ea4b6c30c4710b3d09c3313658117e70b097e850368e2510ca5631f74"

        /// {server}  calculate finished "tls13 finished": finished (32 octets)
        static let serverFinishedVerifyData: String = "8863e6bfb0420a927fa27f34336a70ae426e968e3eb884945b96856dba3976d1"

        /// {server}  construct a Finished handshake message: Finished (36 octets)
        static let serverFinished: String = "140000208863e6bfb0420a927fa27f34336a70ae426e968e3eb884945b96856dba3976d1"

        /// {server}  send handshake record: payload (645 octets)
        /// - Note: Plaintext of the encrypted record: EncryptedExtensions || Certificate || CertificateVerify || Finished.
        static let serverEncryptedHandshakeRecordPayload: String = "080000180016000a0008000600170018001d001c00024001000000000b0001b9000001b50001b0308201ac30820115a003020102020102300d06092a864886f70d01010b0500300e310c300a06035504031303727361301e170d3136303733303031323335395a170d3236303733303031323335395a300e310c300a0603550403130372736130819f300d06092a864886f70d010101050003818d0030818902818100b4bb498f8279303d980836399b36c6988c0c68de55e1bdb826d3901a2461eafd2de49a91d015abbc9a95137ace6c1af19eaa6af98c7ced43120998e187a80ee0ccb0524b1b018c3e0b63264d449a6d38e22a5fda430846748030530ef0461c8ca9d9efbfae8ea6d1d03e2bd193eff0ab9a8002c47428a6d35a8d88d79f7f1e3f0203010001a31a301830090603551d1304023000300b0603551d0f0404030205a0300d06092a864886f70d01010b05000381810085aad2a0e5b9276b908c65f73a7267170618a54c5f8a7b337d2df7a594365417f2eae8f8a58c8f8172f9319cf36b7fd6c55b80f21a03015156726096fd335e5e67f2dbf102702e608ccae6bec1fc63a42a99be5c3eb7107c3c54e9b9eb2bd5203b1c3b84e0a8b2f759409ba3eac9d91d402dcc0cc8f8961229ac9187b42b4de100000f0000840804008033ab13d4462707231b5dcae6c8190b63d1dabc74f28c395370da0b07e5b83066d0246a31acd95df475bfd799a4a70d33ad93d3a317a9b2c0d237a5685b219e774112e391a247607d1aeff1bbd0a39f382ee1a5fe88ae99ec59228e6497e45d48ce275a6d5ef40d169fb6f9d33b052ed3dcdd6b5a48baafffbcb290128415bd38140000208863e6bfb0420a927fa27f34336a70ae426e968e3eb884945b96856dba3976d1"

        /// {server}  send handshake record: complete record (667 octets)
        static let serverEncryptedHandshakeRecord: String = "170303029699bee20baf5b7fc727bfab6223928a381e6d0cf9c4da653f9d2a7b23f7de11cce842d5cf75631763450ffb8b0cc1d238e658af7a12adc86243114ab14a1da2fae42621ce483fb6242eabfaad52566b02b31d2eddedefeb80e66a9900d5f973b40c4fdf74719ecf1b68d7f9c3b6ceb903ca13dd1bb8f8187ae33417e1d152522c5822a1a03ad52c838c55953d610222874cce8e1790b229a2aa0b53c8d377ee720182951dc6181dc5d90bd1f0105ed1e84aa5f75957c6661897079e5ea5007449e3197bdc7c9beeedddeafdd844afa5c315ecfe65e576afe909812880620ec7048b42d7f5c78d76f299d6d82534bdd8f512febc0ed3814aca470cd8000d3e1cb9962b052fbb950df683a52c2ba77ed3713b122937a6e5170964e2ab7969dcd980b3db9b458da7603124d6dc005e4d6e04b4d0c4baf3275db827dbba0a6db09672171fc057b3851d7e026841e2978fbd2346bbefdd0376bb1108fe9acc92189f5650aa5e85d8e8c7b67ac510dba003d3d7e16350bb66d45013efd44c9b607c0d318c4c7d1a1f5cbc57e20611804e3787d7b4a4b5f08ed8fd70bdaeade02260b12ab842ef690b4a3ee7911e841b374ecd5ebbbc2a54d047b600336dd7d0c88b4bc10e58ee6cb656de7247fa20d8e91deb84628608cf80615b62e96c1491c7ac3755eb6901405d3474fe1ac79d106a0cee56c2577fc88480f96cb6b8c681b7b68b53c146093908f350888175bdfb0b1e31ad61e30ba0adfe6d223aa03c0783b5001a57587c328a9afcfcfb978d1cd4328f7d9d60530e630befd96c0c816ee20b0100768ae2a6df51fc68f172740a79af11398ee3be1252491fa9c693479e877f94ab7c5f8cad480203e6ab7b87dd71e8a0729113df17f5eee86ce108d1d72007ec1cd13c85a6c149621e77b7d78d805a30f0be030c315e54"

        /// {server}  derive secret "tls13 c ap traffic": PRK (32 octets)
        static let clientApplicationTrafficSecret0PRK: String = "1131545d0baf79ddce9b87f06945781a57dd18ef378dcd2060f8f9a569027ed8"

        /// {server}  derive secret "tls13 c ap traffic": hash (32 octets)
        static let clientApplicationTrafficSecret0Hash: String = "50f63cbf36b0dd049e7a0ba27d6455745ea2aaac54bb167f9950b2b7ce9509da"

        /// {server}  derive secret "tls13 c ap traffic": info (54 octets)
        static let clientApplicationTrafficSecret0Info: String = "002012746c733133206320617020747261666669632050f63cbf36b0dd049e7a0ba27d6455745ea2aaac54bb167f9950b2b7ce9509da"

        /// {server}  derive secret "tls13 c ap traffic": expanded (32 octets)
        static let clientApplicationTrafficSecret0: String = "75ecf4b972525aa0dcd057c9944d4cd5d82671d8843141d7dc2a4ff15a21dc51"

        /// {server}  derive secret "tls13 s ap traffic": PRK (32 octets)
        static let serverApplicationTrafficSecret0PRK: String = "1131545d0baf79ddce9b87f06945781a57dd18ef378dcd2060f8f9a569027ed8"

        /// {server}  derive secret "tls13 s ap traffic": hash (32 octets)
        static let serverApplicationTrafficSecret0Hash: String = "50f63cbf36b0dd049e7a0ba27d6455745ea2aaac54bb167f9950b2b7ce9509da"

        /// {server}  derive secret "tls13 s ap traffic": info (54 octets)
        static let serverApplicationTrafficSecret0Info: String = "002012746c733133207320617020747261666669632050f63cbf36b0dd049e7a0ba27d6455745ea2aaac54bb167f9950b2b7ce9509da"

        /// {server}  derive secret "tls13 s ap traffic": expanded (32 octets)
        static let serverApplicationTrafficSecret0: String = "5c74f87df04225db0f8209c9de6429e49435fdefa7cad61864874d12f31cfc8d"

        /// {server}  derive secret "tls13 exp master": PRK (32 octets)
        static let exporterMasterSecretPRK: String = "1131545d0baf79ddce9b87f06945781a57dd18ef378dcd2060f8f9a569027ed8"

        /// {server}  derive secret "tls13 exp master": hash (32 octets)
        static let exporterMasterSecretHash: String = "50f63cbf36b0dd049e7a0ba27d6455745ea2aaac54bb167f9950b2b7ce9509da"

        /// {server}  derive secret "tls13 exp master": info (52 octets)
        static let exporterMasterSecretInfo: String = "002010746c73313320657870206d61737465722050f63cbf36b0dd049e7a0ba27d6455745ea2aaac54bb167f9950b2b7ce9509da"

        /// {server}  derive secret "tls13 exp master": expanded (32 octets)
        static let exporterMasterSecret: String = "7c06d3ae106a3a374ace4837b3985cac67780a6e2c5c04b58319d584df09d223"

        /// {server}  derive write traffic keys for application data: PRK (32 octets)
        static let serverApplicationWriteKeysPRK: String = "5c74f87df04225db0f8209c9de6429e49435fdefa7cad61864874d12f31cfc8d"

        /// {server}  derive write traffic keys for application data: key info (13 octets)
        static let serverApplicationWriteKeyInfo: String = "001009746c733133206b657900"

        /// {server}  derive write traffic keys for application data: key expanded (16 octets)
        static let serverApplicationWriteKey: String = "f27a5d97bd25550c4823b0f3e5d29388"

        /// {server}  derive write traffic keys for application data: iv info (12 octets)
        static let serverApplicationWriteIVInfo: String = "000c08746c73313320697600"

        /// {server}  derive write traffic keys for application data: iv expanded (12 octets)
        static let serverApplicationWriteIV: String = "0dd631f7b71cbbc797c35fe7"

        /// {server}  derive read traffic keys for handshake data: PRK (32 octets)
        /// - Note: Read keys of the server, i.e. the client's write keys.
        static let clientHandshakeWriteKeysPRK: String = "158aa7ab8855073582b41d674b4055cabcc534728f659314861b4e08e2011566"

        /// {server}  derive read traffic keys for handshake data: key info (13 octets)
        /// - Note: Read keys of the server, i.e. the client's write keys.
        static let clientHandshakeWriteKeyInfo: String = "001009746c733133206b657900"

        /// {server}  derive read traffic keys for handshake data: key expanded (16 octets)
        /// - Note: Read keys of the server, i.e. the client's write keys.
        static let clientHandshakeWriteKey: String = "2f1f918663d590e7421149a29d94b0b6"

        /// {server}  derive read traffic keys for handshake data: iv info (12 octets)
        /// - Note: Read keys of the server, i.e. the client's write keys.
        static let clientHandshakeWriteIVInfo: String = "000c08746c73313320697600"

        /// {server}  derive read traffic keys for handshake data: iv expanded (12 octets)
        /// - Note: Read keys of the server, i.e. the client's write keys.
        static let clientHandshakeWriteIV: String = "414d5485235e1a688793bd74"

        /// {client}  derive secret for handshake "tls13 derived": PRK (32 octets)
        /// - Note: The client's own (identical) computation of the derivation shown earlier for the server.
        static let clientDeriveSecretForHandshakePRK: String = "33ad0a1c607ec03b09e6cd9893680ce210adf300aa1f2660e1b22e10f170f92a"

        /// {client}  derive secret for handshake "tls13 derived": hash (32 octets)
        /// - Note: The client's own (identical) computation of the derivation shown earlier for the server.
        static let clientDeriveSecretForHandshakeHash: String = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

        /// {client}  derive secret for handshake "tls13 derived": info (49 octets)
        /// - Note: The client's own (identical) computation of the derivation shown earlier for the server.
        static let clientDeriveSecretForHandshakeInfo: String = "00200d746c733133206465726976656420e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

        /// {client}  derive secret for handshake "tls13 derived": expanded (32 octets)
        /// - Note: The client's own (identical) computation of the derivation shown earlier for the server.
        static let clientDeriveSecretForHandshake: String = "6f2615a108c702c5678f54fc9dbab69716c076189c48250cebeac3576c3611ba"

        /// {client}  calculate finished "tls13 finished": PRK (32 octets)
        static let clientFinishedKeyPRK: String = "158aa7ab8855073582b41d674b4055cabcc534728f659314861b4e08e2011566"

        /// {client}  calculate finished "tls13 finished": hash (0 octets)
        static let clientFinishedKeyHash: String = ""

        /// {client}  calculate finished "tls13 finished": info (18 octets)
        static let clientFinishedKeyInfo: String = "00200e746c7331332066696e697368656400"

        /// {client}  calculate finished "tls13 finished": expanded (32 octets)
        static let clientFinishedKey: String = "81be4131fbb9b6f4471450846f74fd1e68c5224ba7c2a8677f5c53ad226fdc13"

        /// {client}  calculate finished "tls13 finished": finished (32 octets)
        static let clientFinishedVerifyData: String = "23f52fdb0709a55bd7f79b991f25484087bcfd4d4380b12326a52a28b2e368e1"

        /// {client}  construct a Finished handshake message: Finished (36 octets)
        static let clientFinished: String = "1400002023f52fdb0709a55bd7f79b991f25484087bcfd4d4380b12326a52a28b2e368e1"

        /// {client}  send handshake record: payload (36 octets)
        static let clientFinishedRecordPayload: String = "1400002023f52fdb0709a55bd7f79b991f25484087bcfd4d4380b12326a52a28b2e368e1"

        /// {client}  send handshake record: complete record (58 octets)
        static let clientFinishedRecord: String = "1703030035d74f1923c662fd34137c6f502f3dd2b93d951d1b3bc97e42afe23c31abea92fe91b474999e85e3b791ce252fe8c3e9f939a4120cb2"

        /// {client}  derive write traffic keys for application data: PRK (32 octets)
        static let clientApplicationWriteKeysPRK: String = "75ecf4b972525aa0dcd057c9944d4cd5d82671d8843141d7dc2a4ff15a21dc51"

        /// {client}  derive write traffic keys for application data: key info (13 octets)
        static let clientApplicationWriteKeyInfo: String = "001009746c733133206b657900"

        /// {client}  derive write traffic keys for application data: key expanded (16 octets)
        static let clientApplicationWriteKey: String = "a7eb2a0525eb4331d58fcbf9f7ca2e9c"

        /// {client}  derive write traffic keys for application data: iv info (12 octets)
        static let clientApplicationWriteIVInfo: String = "000c08746c73313320697600"

        /// {client}  derive write traffic keys for application data: iv expanded (12 octets)
        static let clientApplicationWriteIV: String = "86e8be227c1bd2b3e39cb444"

        /// {client}  derive secret "tls13 res master": PRK (32 octets)
        static let resumptionMasterSecretPRK: String = "1131545d0baf79ddce9b87f06945781a57dd18ef378dcd2060f8f9a569027ed8"

        /// {client}  derive secret "tls13 res master": hash (32 octets)
        static let resumptionMasterSecretHash: String = "0e8b349158b855fdcd0c11dbbc4e83e43caa6e483c6c65df53151888e50165f4"

        /// {client}  derive secret "tls13 res master": info (52 octets)
        static let resumptionMasterSecretInfo: String = "002010746c73313320726573206d6173746572200e8b349158b855fdcd0c11dbbc4e83e43caa6e483c6c65df53151888e50165f4"

        /// {client}  derive secret "tls13 res master": expanded (32 octets)
        static let resumptionMasterSecret: String = "09170c6d472721566f9cf99b08699daff561ec8fb22d5a32c3f94ce009b69975"

        /// {client}  send alert record: payload (2 octets)
        static let clientAlertRecordPayload: String = "0100"

        /// {client}  send alert record: complete record (24 octets)
        static let clientAlertRecord: String = "17030300132ea6cdf749196023e2b3a49491695536426047"

        /// {server}  send alert record: payload (2 octets)
        static let serverAlertRecordPayload: String = "0100"

        /// {server}  send alert record: complete record (24 octets)
        static let serverAlertRecord: String = "1703030013519fc5075cb0884349759ff9ef6f011bb4c6f2"
    }
}

/// Decodes a hex string, ignoring whitespace (spaces, tabs, newlines). Accepts upper- and lowercase digits.
/// Test-only: traps via `preconditionFailure` on a non-hex character or an odd number of digits.
func hex(_ s: String) -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(s.utf8.count / 2)
    var high: UInt8? = nil
    for c in s.utf8 {
        let nibble: UInt8
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): nibble = c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): nibble = c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): nibble = c - UInt8(ascii: "A") + 10
        case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"): continue
        default: preconditionFailure("hex(): invalid character \(UnicodeScalar(c)) in hex string")
        }
        if let h = high {
            out.append(h << 4 | nibble)
            high = nil
        } else {
            high = nibble
        }
    }
    if high != nil { preconditionFailure("hex(): odd number of hex digits") }
    return out
}
