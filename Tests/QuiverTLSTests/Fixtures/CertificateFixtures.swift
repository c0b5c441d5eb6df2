/// PEM fixtures for the certificate tests, generated once with OpenSSL 3.0 and kept as source
/// (loose `.pem` files in a test target would make SwiftPM warn about unhandled resources):
///
///     openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa2048.pem   # also 4096, 1024
///     openssl pkey -in rsa2048.pem -traditional -out rsa2048-pkcs1.pem                 # PKCS#1
///     openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out p256.pem     # also P-384, P-521
///     openssl pkey -in p256.pem -traditional -out p256-sec1.pem                        # SEC1, also P-384
///     openssl genpkey -algorithm ED25519 -out ed25519.pem
///     openssl req -new -x509 -key KEY.pem -days 36500 -subj "/CN=fixture-KEY" \
///         -addext "subjectAltName=DNS:fixture.example" -out KEY-cert.pem           # rsa2048, p256, p384, ed25519
enum CertificateFixtures {
    /// `ed25519-cert.pem`
    static let ed25519Cert = """
    -----BEGIN CERTIFICATE-----
    MIIBZzCCARmgAwIBAgIUF7VssvMbOMHQqlhWCLa82Iz2TkcwBQYDK2VwMBoxGDAW
    BgNVBAMMD2ZpeHR1cmUtZWQyNTUxOTAgFw0yNjExMjkwNTAzMDRaGA8yMTI2MTEw
    NTA1MDMwNFowGjEYMBYGA1UEAwwPZml4dHVyZS1lZDI1NTE5MCowBQYDK2VwAyEA
    o8boBzGfMTffeydRnYJDrt/3wGOfRSV4rUD2E5Dqu+ejbzBtMB0GA1UdDgQWBBQa
    PMwUZc5pSdy7/IT2mx/ywGJFsjAfBgNVHSMEGDAWgBQaPMwUZc5pSdy7/IT2mx/y
    wGJFsjAPBgNVHRMBAf8EBTADAQH/MBoGA1UdEQQTMBGCD2ZpeHR1cmUuZXhhbXBs
    ZTAFBgMrZXADQQDgnZcrYO5qvRAflqJgptrL9RhXvta2fFAyDYB4tVX7Ubn3hT+O
    UTc9SshQz64pxjZpkUg/zWmuT+vCNubtm8wI
    -----END CERTIFICATE-----
    """

    /// `ed25519.pem`
    static let ed25519 = """
    -----BEGIN PRIVATE KEY-----
    MC4CAQAwBQYDK2VwBCIEIFlr/HTKJ6cCVwJZvItAxxbwfbHMyAM7YXMkKugz7diS
    -----END PRIVATE KEY-----
    """

    /// `p256-cert.pem`
    static let p256Cert = """
    -----BEGIN CERTIFICATE-----
    MIIBoTCCAUegAwIBAgIUBG+ijcwS1jgDK3eWhWGmA9l5ahwwCgYIKoZIzj0EAwIw
    FzEVMBMGA1UEAwwMZml4dHVyZS1wMjU2MCAXDTI2MTEyOTA1MDMwNFoYDzIxMjYx
    MTA1MDUwMzA0WjAXMRUwEwYDVQQDDAxmaXh0dXJlLXAyNTYwWTATBgcqhkjOPQIB
    BggqhkjOPQMBBwNCAATWJ/DkMLBpGsQDdDLkejCGuQQ+Zxn2wL1rHQbODPv6sAlG
    zlk2iqN5DwdgDSy8Pc06wFjizx/Hx0j1HQ9uG7DYo28wbTAdBgNVHQ4EFgQULtGd
    aGnCSQVapqirTlxL2zVU0egwHwYDVR0jBBgwFoAULtGdaGnCSQVapqirTlxL2zVU
    0egwDwYDVR0TAQH/BAUwAwEB/zAaBgNVHREEEzARgg9maXh0dXJlLmV4YW1wbGUw
    CgYIKoZIzj0EAwIDSAAwRQIgDhifOmGJzlvQU2R4SOp4ADsLs8iGOWGGE2AQW4BK
    ziUCIQCz1f4Kqn0IOben3TUAwMYGe51lVm+3lwoAFyIMv3SnMw==
    -----END CERTIFICATE-----
    """

    /// `p256-sec1.pem`
    static let p256Sec1 = """
    -----BEGIN EC PRIVATE KEY-----
    MHcCAQEEIO6R/6E8zg/6fhkrNMTLRm1TmYll+GI4aRD3bKDesiUOoAoGCCqGSM49
    AwEHoUQDQgAE1ifw5DCwaRrEA3Qy5HowhrkEPmcZ9sC9ax0Gzgz7+rAJRs5ZNoqj
    eQ8HYA0svD3NOsBY4s8fx8dI9R0Pbhuw2A==
    -----END EC PRIVATE KEY-----
    """

    /// `p256.pem`
    static let p256 = """
    -----BEGIN PRIVATE KEY-----
    MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg7pH/oTzOD/p+GSs0
    xMtGbVOZiWX4YjhpEPdsoN6yJQ6hRANCAATWJ/DkMLBpGsQDdDLkejCGuQQ+Zxn2
    wL1rHQbODPv6sAlGzlk2iqN5DwdgDSy8Pc06wFjizx/Hx0j1HQ9uG7DY
    -----END PRIVATE KEY-----
    """

    /// `p384-cert.pem`
    static let p384Cert = """
    -----BEGIN CERTIFICATE-----
    MIIB3jCCAWSgAwIBAgIUQHRJntpBwI8W472Et0trsThs8QswCgYIKoZIzj0EAwIw
    FzEVMBMGA1UEAwwMZml4dHVyZS1wMzg0MCAXDTI2MTEyOTA1MDMwNFoYDzIxMjYx
    MTA1MDUwMzA0WjAXMRUwEwYDVQQDDAxmaXh0dXJlLXAzODQwdjAQBgcqhkjOPQIB
    BgUrgQQAIgNiAAQlhauXLUheRHCWKZPKjYIuxlHfj6vuN5CXZqeg2T/3WyMejosZ
    ELeu3U33Iuc5MfDMza21ktm9rGXBDyXy4BRoy53a7+FiDVkP4KiDrrbP6bsspAlv
    ZDHKwTOZ53loUvCjbzBtMB0GA1UdDgQWBBRrNsVMUFpcbdC6fQ32fWtC+ziIOzAf
    BgNVHSMEGDAWgBRrNsVMUFpcbdC6fQ32fWtC+ziIOzAPBgNVHRMBAf8EBTADAQH/
    MBoGA1UdEQQTMBGCD2ZpeHR1cmUuZXhhbXBsZTAKBggqhkjOPQQDAgNoADBlAjAo
    qvbFqTPjd6hWCiJUpqJwYrh16f7nfGLt4/PmK7l3v0o0IhidylfW4J0Pt58jJOYC
    MQC06E+644JU4Td2ga/1vLARLVEcaZmKT0GtgggAooGIegK/kVCf47E57HQy7CaH
    kI0=
    -----END CERTIFICATE-----
    """

    /// `p384-sec1.pem`
    static let p384Sec1 = """
    -----BEGIN EC PRIVATE KEY-----
    MIGkAgEBBDD8+j8/aIDZf+CMCiErAw8w/ZHjnSjUYYgz4Ry583F2p8eegqE53Hmg
    yFdSAgy8HJOgBwYFK4EEACKhZANiAAQlhauXLUheRHCWKZPKjYIuxlHfj6vuN5CX
    Zqeg2T/3WyMejosZELeu3U33Iuc5MfDMza21ktm9rGXBDyXy4BRoy53a7+FiDVkP
    4KiDrrbP6bsspAlvZDHKwTOZ53loUvA=
    -----END EC PRIVATE KEY-----
    """

    /// `p384.pem`
    static let p384 = """
    -----BEGIN PRIVATE KEY-----
    MIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDD8+j8/aIDZf+CMCiEr
    Aw8w/ZHjnSjUYYgz4Ry583F2p8eegqE53HmgyFdSAgy8HJOhZANiAAQlhauXLUhe
    RHCWKZPKjYIuxlHfj6vuN5CXZqeg2T/3WyMejosZELeu3U33Iuc5MfDMza21ktm9
    rGXBDyXy4BRoy53a7+FiDVkP4KiDrrbP6bsspAlvZDHKwTOZ53loUvA=
    -----END PRIVATE KEY-----
    """

    /// `p521.pem`
    static let p521 = """
    -----BEGIN PRIVATE KEY-----
    MIHuAgEAMBAGByqGSM49AgEGBSuBBAAjBIHWMIHTAgEBBEIA1Z9QCPjTO5wrRi+c
    tp2T/YJr6BcPRy2srPsZIf1yLpdYsXWpEQiHfi+KLVDnkZjDVv25aTardBsYZ7i7
    FtDdafChgYkDgYYABACmRDS64VzOk5Wy4UrGCO722myO17BhbkTkXVL3xjoowKcD
    t/SD3+HE4ZqbEfQajTPn7Bjr0pPhay3ItTEIfKZY+AHLCVx++FSQa3hhxhnfr2nb
    AlxQDd6WeOFLHJ4UamDWv/yMcF0wQPvU8zxDKZLiokpTYEEdD3xkDQKEZuxzvFar
    Pw==
    -----END PRIVATE KEY-----
    """

    /// `rsa1024.pem`
    static let rsa1024 = """
    -----BEGIN PRIVATE KEY-----
    MIICdgIBADANBgkqhkiG9w0BAQEFAASCAmAwggJcAgEAAoGBALiWM6OBSTNqjJku
    l5rhFANvJ9Mj2u7bWiOzmfjm2ugN3DqtjPCot550mBXt6VhOk4CsyB7kSa8rjQAU
    kjlPFBvWuhh1vT5mwBml+Aif99H3S61QOtaP83Mmkt8d+/IY55Ef7e5pGonWbV6m
    Ocw8CDtX2Go1OSvLG+9NyVF0E6AFAgMBAAECgYEAnae0TTd0dRTRJ1hzJlaNiG1c
    /2pFaPMy5wFURhGu8Lo92mQ216nSwuTkrP456jGarDFm73OeN54j3Oi1B3uyOKvy
    mlYoXOpnS66jSE7WA/AuoCQqiPC+t+AZOZyAg6tw500oVN20JQg15YeqUN6iHPRH
    2FoK5/OOvEhcrcYWL0ECQQDt5VfHPuKkz0jNzfdMtVueO6pu13wyk4jSQVvQBQKs
    ekPTzickHAKUK2G4YxlgOjM/+77kV94bb2E2+dSKHCzxAkEAxqJL/ZkDJKFxXUZ8
    ysbRzqhY9WqzuqScUOIeQ50/q3u8q5Qmdii0w2KtACIc3NyCL01MEu07KVtzKPn7
    6BP0VQJAa1kzO+iHk0EqJBxN/KJVvlhENxIrrBLhCaeOi5bHNxdQ5hG/nc655yyQ
    QwkM2VxJ5hRudlGkGxMudgVUQCIosQJAdsealX2oiYEZH2QFP+UAlYnKGIfEDjpd
    V2jAHEKuTkdiHWAsV8AjyCr7tPaxN8mM9+hLM441MJgFF13Vq4QzOQJAY+4nD4q3
    Y6uGpmXTPbYjl3TfxF8JMuLec2I4RAoAbftL25QFJbgmkpPzfsWjMhYnXhit4KTO
    C+0XR1dO39RSIg==
    -----END PRIVATE KEY-----
    """

    /// `rsa2048-cert.pem`
    static let rsa2048Cert = """
    -----BEGIN CERTIFICATE-----
    MIIDMzCCAhugAwIBAgIUfl2lsOTZBEUEEQggP+KPhfLdZNYwDQYJKoZIhvcNAQEL
    BQAwGjEYMBYGA1UEAwwPZml4dHVyZS1yc2EyMDQ4MCAXDTI2MTEyOTA1MDMwNFoY
    DzIxMjYxMTA1MDUwMzA0WjAaMRgwFgYDVQQDDA9maXh0dXJlLXJzYTIwNDgwggEi
    MA0GCSqGSIb3DQEBAQUAA4IBDwAwggEKAoIBAQDWRYqgTEG2DL/WVLHD8vtoAQ5h
    dlkitgYsLC9sdPSe/XSJKUClWwPnkhb+qOdhJg6r7polG3zkImMNHYqUqHOWiiIu
    XXV+g3rqUBw3ofWOKGVIahLTclgnr6D1SgSZrE7nSKx2U7gMpAcrBp38sEvoRMOU
    YP3mSaAn9MfZYnQv9tiT1+R0HBcIp2A5dhkXi8tnLqW37smNwTpbICgImP/0mDBP
    MlzqeE2Rh6skBCSmjSaIPgAZyKyJZ1/pDaY4lfdIZHVoQYyvaOiDZ2VeGpfYUUG+
    TsccNtLMdy19X8kymz8DSKMxK4e72RK5ORt7ls6xEqvPUxf2z8q8kTwsRCEjAgMB
    AAGjbzBtMB0GA1UdDgQWBBTA9jhNfyjXb5IP824DFpsXDQvxRTAfBgNVHSMEGDAW
    gBTA9jhNfyjXb5IP824DFpsXDQvxRTAPBgNVHRMBAf8EBTADAQH/MBoGA1UdEQQT
    MBGCD2ZpeHR1cmUuZXhhbXBsZTANBgkqhkiG9w0BAQsFAAOCAQEAB5aKOWQrBEZC
    peKgFJgu1pR21JllvxOLbmGvbS6tyHHHBvIFQEAu+KOnLy78gDXgbxwGSJ2Yaelq
    2jn8K4EIfZB6b+zH9jEYCjK5DbF9WsLTjFBAoEa9tD5G10JXoli5uKvSulDepntJ
    3exGgsK+WQhe6uDH8qbZ1FdXIJCsgdbhQ4E3+prlxOhLFK42iFTTKdc4u5rWh0dc
    FLOnz1zhEVM/kNHreNoqTdjBC24PuArzUA/tO6zt3NQuSaEQUV1sPUDEBefk4z09
    43dvQsaXYQGoIZYpU5T7A7XMm+oUm/1P4LU4T/FOs3XmFmLfBrv/eGTuESwDWotY
    YCrlgzx5dQ==
    -----END CERTIFICATE-----
    """

    /// `rsa2048-pkcs1.pem`
    static let rsa2048Pkcs1 = """
    -----BEGIN RSA PRIVATE KEY-----
    MIIEowIBAAKCAQEA1kWKoExBtgy/1lSxw/L7aAEOYXZZIrYGLCwvbHT0nv10iSlA
    pVsD55IW/qjnYSYOq+6aJRt85CJjDR2KlKhzlooiLl11foN66lAcN6H1jihlSGoS
    03JYJ6+g9UoEmaxO50isdlO4DKQHKwad/LBL6ETDlGD95kmgJ/TH2WJ0L/bYk9fk
    dBwXCKdgOXYZF4vLZy6lt+7JjcE6WyAoCJj/9JgwTzJc6nhNkYerJAQkpo0miD4A
    GcisiWdf6Q2mOJX3SGR1aEGMr2jog2dlXhqX2FFBvk7HHDbSzHctfV/JMps/A0ij
    MSuHu9kSuTkbe5bOsRKrz1MX9s/KvJE8LEQhIwIDAQABAoIBAGgu+Pf3DA5SBabX
    mHWvu+j2doESE8YKXlb1BvwDo/t4PkUAz2N3LR9YC6E4DATTBdg4VC/NvTyJscKr
    RfoBK+6a7ILBw4LHuCic2hN8xtIftxtuJAg2tUFapncNzc3Ql67iSaThEQDocmnL
    tl6qc8YURUpsnJdv3hT/cnqy4c59oedFNUhjP0E9lBYchhBrT/hfBUVlmd1V85R5
    X3U2AdypdE2F2DZH5zFQWP8WDAyE4wB2bc2+7p9X52U7roFugYkGLopfJDCoc8Qa
    YcLNaELYfjSzDtv2o/UMEJEmxKCkoxMJ2Fogwk+QPMefNK8XFf/CUk7hScvY6egB
    43oz/okCgYEA+Khu7Gn/Ez56VoBU82sAUX+rFLapLI2KWOXOtfh6vraQOnrAJYy2
    s6MmPSvQ5tVHe5+6BDyP3Rs9mHmfpyfKSeHsLzP8lrHSoSQF/Gy3IFYug3Jo6vOr
    g4G/N6VpjNkCd4Xf8AZewykqbKoG6j+r4BW6/9QXtqU0Jrs2LK5OmzkCgYEA3Jkw
    A1mr5vkEpUV8jc/qG1huv/JqHNOcxQX6gjnqBMp2eyiQAfLevW9GJf7cHDQi3Xtm
    yHFPeoXzcuMF3WENh8grtTjtcMfAaZmZm3Mh7UX2+6YYSp9cDT6o5F9YHe5LsYpL
    uROEYlVfRK3fARTPqSTi0fOMAGkOjblqO38KMzsCgYEAncHm1hENprztyvGSc/j/
    87Tm6rZUsJKAIpRySBsEbPjQmnmEbI5Q37lzqj2hRMItnu4gi02NDH+a3aDUPK3O
    9n7iZLQ73bOl6Vw8fADRUi+7ROQSUnYT69QmZ/yG8bhAi2ohQFwaRQFaDCT3TCjn
    N70xrdt2zAcWBjiiT0irUGkCgYAd+JIVYnGAiAShj7dEbSMZZAJoAb94+ycpfY5z
    cvrge8FtKi2mliC9DAkz0FSHYG38OW/Ve8+YjeptiXqagT0dXYzSqlFYKUtzDXNZ
    M2NAoWjU99QFD3GqOwEnRezq5B1Umb1//67UzVSMODM8Kl+sU16dt8ElrSBVEQPl
    4XS5UQKBgHg8y9vKi4lOMjew57BZuDbUmH1r/ROTZJ/474Et1IY69k/mMO72gcbA
    dF/fTH93Cf/IZM/6JzxRsbydlQ6DqjVbekHM+mlsOTRlrMS7xlKRGR6/xhwkThAp
    VhtKd13RAHyS3PobZKE0dehbnKByQcxKOd7uuljUK+kPaiSCFh9j
    -----END RSA PRIVATE KEY-----
    """

    /// `rsa2048.pem`
    static let rsa2048 = """
    -----BEGIN PRIVATE KEY-----
    MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDWRYqgTEG2DL/W
    VLHD8vtoAQ5hdlkitgYsLC9sdPSe/XSJKUClWwPnkhb+qOdhJg6r7polG3zkImMN
    HYqUqHOWiiIuXXV+g3rqUBw3ofWOKGVIahLTclgnr6D1SgSZrE7nSKx2U7gMpAcr
    Bp38sEvoRMOUYP3mSaAn9MfZYnQv9tiT1+R0HBcIp2A5dhkXi8tnLqW37smNwTpb
    ICgImP/0mDBPMlzqeE2Rh6skBCSmjSaIPgAZyKyJZ1/pDaY4lfdIZHVoQYyvaOiD
    Z2VeGpfYUUG+TsccNtLMdy19X8kymz8DSKMxK4e72RK5ORt7ls6xEqvPUxf2z8q8
    kTwsRCEjAgMBAAECggEAaC749/cMDlIFpteYda+76PZ2gRITxgpeVvUG/AOj+3g+
    RQDPY3ctH1gLoTgMBNMF2DhUL829PImxwqtF+gEr7prsgsHDgse4KJzaE3zG0h+3
    G24kCDa1QVqmdw3NzdCXruJJpOERAOhyacu2XqpzxhRFSmycl2/eFP9yerLhzn2h
    50U1SGM/QT2UFhyGEGtP+F8FRWWZ3VXzlHlfdTYB3Kl0TYXYNkfnMVBY/xYMDITj
    AHZtzb7un1fnZTuugW6BiQYuil8kMKhzxBphws1oQth+NLMO2/aj9QwQkSbEoKSj
    EwnYWiDCT5A8x580rxcV/8JSTuFJy9jp6AHjejP+iQKBgQD4qG7saf8TPnpWgFTz
    awBRf6sUtqksjYpY5c61+Hq+tpA6esAljLazoyY9K9Dm1Ud7n7oEPI/dGz2YeZ+n
    J8pJ4ewvM/yWsdKhJAX8bLcgVi6Dcmjq86uDgb83pWmM2QJ3hd/wBl7DKSpsqgbq
    P6vgFbr/1Be2pTQmuzYsrk6bOQKBgQDcmTADWavm+QSlRXyNz+obWG6/8moc05zF
    BfqCOeoEynZ7KJAB8t69b0Yl/twcNCLde2bIcU96hfNy4wXdYQ2HyCu1OO1wx8Bp
    mZmbcyHtRfb7phhKn1wNPqjkX1gd7kuxiku5E4RiVV9Erd8BFM+pJOLR84wAaQ6N
    uWo7fwozOwKBgQCdwebWEQ2mvO3K8ZJz+P/ztObqtlSwkoAilHJIGwRs+NCaeYRs
    jlDfuXOqPaFEwi2e7iCLTY0Mf5rdoNQ8rc72fuJktDvds6XpXDx8ANFSL7tE5BJS
    dhPr1CZn/IbxuECLaiFAXBpFAVoMJPdMKOc3vTGt23bMBxYGOKJPSKtQaQKBgB34
    khVicYCIBKGPt0RtIxlkAmgBv3j7Jyl9jnNy+uB7wW0qLaaWIL0MCTPQVIdgbfw5
    b9V7z5iN6m2JepqBPR1djNKqUVgpS3MNc1kzY0ChaNT31AUPcao7ASdF7OrkHVSZ
    vX//rtTNVIw4MzwqX6xTXp23wSWtIFURA+XhdLlRAoGAeDzL28qLiU4yN7DnsFm4
    NtSYfWv9E5Nkn/jvgS3Uhjr2T+Yw7vaBxsB0X99Mf3cJ/8hkz/onPFGxvJ2VDoOq
    NVt6Qcz6aWw5NGWsxLvGUpEZHr/GHCROEClWG0p3XdEAfJLc+htkoTR16FucoHJB
    zEo53u66WNQr6Q9qJIIWH2M=
    -----END PRIVATE KEY-----
    """

    /// `rsa4096.pem`
    static let rsa4096 = """
    -----BEGIN PRIVATE KEY-----
    MIIJQgIBADANBgkqhkiG9w0BAQEFAASCCSwwggkoAgEAAoICAQDQOJlao+2xPoO7
    Kr3Rf7xELnedZYStvb2CgkYojok2x8xIkaeqC90a990e+TFW0Z7MEaUzjkq3hhIw
    jT4BIqmtO2IBccaYuSqODBz2n8NmHSwfqOmaM1weyCdO3+J+3KKhxkmOUwGq5lSP
    htolhTD1D7k2d8HmH408sz2pft7P+aycSFoD7O6Nw8AlSxFw5806mpQcqewHsd08
    0uimp9gl5PFSsIU5B9QuLeftKQLhEKZhcFf5keOdoQMuawoNuef4azAwDBPIENIx
    7NkCgNbUd+gfi0hI5vDoQgcSeXNQTy+IwKfCjw2w5/tPpLeVsl2UtDp/oGLlskpg
    MMFtvNdN6oqYJDKlAWJtRbb624xLgtE5Wu+fFPK2elTyHtN/YHQr/msbNtWN5ysf
    LTpHnfTnALQuh5RygZj6MYlKwUi4UTfFjzoGmPuvc7oltDO5wYKGW1wpGHykOIxF
    dsyLKV7jLVgGgTd50oSeLt7q+ZMoZVGgQ/HoiA38kAlUkiRPA+qYVT831muYZOhl
    uVBFUQ6omHr0DxWFhph5bTlxnjMYNlIBxJ+y8rGtqIRONeKoWcGEj+jiHrK1q4gm
    UHB5XdfQ+bSu93W2bfmUgTeRmE84XkW6ahz1CNZ3m1hSJKX/EHQBQif5wYdcR6wk
    XdwvwZJAaE/9Do61QpRrqbBmWmWoOwIDAQABAoICADY8t/17O9vya7/iN0WN301n
    STMPkYrsJKQNKRdBYY6KZrT0c9cAdhyjOc7qnCaAPbvsULroMqAxZSWOdPs4uzfr
    gvDbYR7BBMuxbg3zuaMssCSjDA5lmHZQLqUF/mqLMDWxf9F537JTgu1L9CDX29PJ
    v7XnZfN6foC0M7il2oYUBBlFY2UoX09AERnlvupJBxVf1HrO7DNo6jcAvSdECzJ7
    uzyNzHX5ixRoUsRc7WoQuzYgXFoe3Upe+YQqz5iZt0nnKcsqKjDv6MCmcDSNuOfp
    P+aPkkmjFld5c3wldJsTtU8K1+f++VL+amDpiASPTH8Cn0ZFUd2BHoyFxqy+BtrF
    VDI++8vvlzsb6w3Up8brHXe7TZ0SXxnnTTPd4YK/zRs/9ucI4BPbNx9EchdHljYy
    H80xCGLUTkH7KnWmWxaHHAbEC35wGdVKLrXc/1BIVFH3EvHislteGraY6HQzSw4v
    z4B3Yi24VcsWcilKy7o03VawAyQPcLYc2uOLSJ3X4RbGbBwmwM+MiSJoWfmmxgl/
    jkNhyfqtl0OKN+qCnfZf/QK8u7GxED49RTM7mJBThkr45sGqywQtoqhEBja8Ix4j
    SzHRR4SFWyhYwswZZr6PVuyitgCJtLQs38z+lIYXElCf2tnqyKd8nLZjqurZJIUd
    GzXcam5sXdovdOjJqH8xAoIBAQD2zr3PkN8nHWbPuNA088AVrICUlDfM0OaxG6tH
    9Z2Dz3ecVN0OH7Kdte9MOjAFjTeCrNhhB1HbVMLwpxvenAqFkBpjRaJQZGzGs0T2
    AN777upxhSpPG3mp66T4lhuoh/iYPSwAGliCrft1VmFS3O96tOUCSEhzHlWdxAM0
    0igeZWhabRMOXnHFHt+Fo10Q2xcZdvjMUmPI0aSobJJX/wAFpa3c6zP/jMCyRUEV
    SYNU18JUuHTgZvl7acSM+Oa8ZRTETktmfUarwc3wzaiFGbw0+qcb9jBl6X7kANbR
    YsQM7EW+ia9MIAsQSYUf0ZMdBkxSIGLyz2GNHCqPw03ZqiqDAoIBAQDX+fGG6dxb
    KM6RX5nDDK55XAuG+luCjf11WTN6XVNRgshP4RTRXvFTs1LyTPOnf7KbQZtj9469
    u/TE28CmtWxk6GELYQgrA6l9UvAae4lz6c1/+6lb1Cf0tI+z9U4zVdoWsRD1Df9W
    eVpdUWpmWQ0LMNcwa2ev+F8i1+okpdvZImmlv8tzgN8426uj2y94sl9AAVAnSKah
    B6SIpMqZ+uoEgOr7B1fu7mjxVgC+WKHUx/MpLsxyKEyuds0JPLdhjTbfDAFViRfD
    TWtrIYp54A1iF3GjBTPxSsodRW2km/Pz8W4hmJiBF5A9yR75ZjdEgWwbVvuDps+F
    POQeyJOJwX3pAoIBABAn5GDr+M+UqyA51tdAhXhlvFz9ftGXcyJwzzt8pnz0Xb4M
    CBRemtCcEjgJLw+N+O5C5j8jvYX//GrIZZii2kV382JAMqnUiRJQtdjsoawYLZyU
    vPpEsCghVsE3AkR78hf1GSZAkz6qqOU7bE+CSuLbaIpHtQZkG/Kh3BvfDeU/eh9B
    OJgeMpBWvwb+dJ8f2FlAYnTth76jioXD5aiA9r1n5QOrGdJGom6I/gOotkIdhYkK
    MgxmcTpU6BraSDBY5Y0cGu9wj+m6XALBU6Cy2JEXP00jRnPFXxsJuwYl0vONm9sn
    JCR1jIPabC5zB5BE00Yk/JUsYhRcnaSfgj8XVoUCggEAIl823x/M3/0okt5CHFai
    VdIeS4cAlVB/q/NcS/caUXic5ImPxJp1kbqSUtmIVXnvNOJGFqzJXMzS8Zl/mYh6
    Db0l5Ke2oxHcIYPXjn9mqrnk6J9mnqSvDzTFQgCiR208Xiwj5LwrjNmXVg6k/lDh
    0IwfUydkww6mJWdzbg2vZWkioyxY9rLl06iyMkupzG2m1wredMINMseCmfSQAd16
    7OiPfQ/4IKB0tyPWznRQnQqNWlqGUwyy13k0vGmbTb0ppGnGtJQy4fQqSkx2O1s7
    BgdxIF6tm5Mpg2sPPglL0+DyhApDCxhy7kJZ2Zs45IAsclVvhc5AbJX6QCPvxxay
    MQKCAQEAoS2nkT4YMZlmC+5hOyhk7oD0NLSZcKA5x4JFbLcKsqf2FbY/mKc9+4Sl
    kUBG2FAjamjBgU5HP828dyhYPyWcEm1tq/wx75ZsVT8yOfOnZsJ1KXtKggndn5Nk
    YikupEGSdMKos1RzVJ5edSdOBeRwGE1BQeUFTbfK4XfkCUG8CaS2ZF0T2MbNhfJl
    pmOQ8+EBBVsBkvhB6X95R0iREXXLxpCnFUG+NApI9q5N+2EME0QSFyb0b0PnTZkc
    KmWGXcZJSVg6CooiU/2yfeyi1T9UnSpsuFquWXdQQ5MioEM0S5gtfFIv33M1fyN+
    qXk2/Al3aJ6a2FofNoKQ/KKxzfu1qA==
    -----END PRIVATE KEY-----
    """
}
