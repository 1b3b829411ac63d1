//! Byte-array tests of the TLS parser and session.
//!
//! Real handshakes are copied (as hex, from `tshark -T fields -e
//! tcp.payload`) from the captures of the shared test corpus; their
//! expected JA3/JA3S come from tshark 4.0.17 (`expected/*/*.tls.tsv`),
//! JA4 from suricata-verify's `ja4-tls` test and from nDPI's expected
//! output. Synthetic hellos are built with the helpers at the end.

use super::parser::{self, ClientHello};
use super::{probe, Session};
use crate::l7::{Call, CallStatus, Decoder, Direction, L7Error, Probe, SessionConfig, Transport};
use Direction::{ToClient, ToServer};

/// suricata-verify `tests/ja4-tls/input.pcap`, frame 4: ClientHello (TLS 1.2, no SNI, ALPN spdy/3.1,http/1.1).
const JA4TLS_CH: &str = concat!(
    "16030100af010000ab0303942d1fef575d770207c29dbe2401ccf05dcde1d2a5869c4a3eee38db551ad9bc000024c02b",
    "c02f009ec00ac009c013c014c007c011003300320039009c002f0035000a000500040100005eff01000100000a000800",
    "06001700180019000b00020100002300003374000000100014001208737064792f332e3108687474702f312e31755000",
    "0000050005010000000000120000000d0012001004010501020104030503020304020202",
);

/// Same capture, frame 6: ServerHello, Certificate, ServerKeyExchange, ServerHelloDone (4 records).
const JA4TLS_SERVER_FLIGHT: &str = concat!(
    "160303003d02000039030354f9fc1577e433d32da82e9d38897d5a2628bfb09851dad9bd03f8afa209a4f000c02f0000",
    "11ff01000100000b0004030001020023000016030303790b00037500037200036f3082036b30820253a0030201020209",
    "0097e647098eeac9b4300d06092a864886f70d0101050500304c310b3009060355040613024652310c300a0603550408",
    "0c03494446310e300c06035504070c055061726973310f300d060355040a0c065374616d7573310e300c06035504030c",
    "0553454c4b53301e170d3135303231323138303732375a170d3235303230393138303732375a304c310b300906035504",
    "0613024652310c300a06035504080c03494446310e300c06035504070c055061726973310f300d060355040a0c065374",
    "616d7573310e300c06035504030c0553454c4b5330820122300d06092a864886f70d01010105000382010f003082010a",
    "0282010100a682bee856936d61f74fc94777cde53c7c8d0dba1534f5ae1e85a8d6da336d5ffd6253fa45f05d84742787",
    "7132643c96fff394bfbf0250a58477588e35cdf0f3246994e77b93d8357adab2f94e0f24be0109e3f2f64beee593992c",
    "770cb4edf555dfdab2ea578abdf230f392cbe3976752c2bc21392e5dc9173bf7d633ed613f085b41344a4fb690aa8e97",
    "895b7512833619800d7b7f7aae32d15fdd6b47ea5a4150041785c4c79d754587a974b326f965011df086014ebe30a576",
    "d4e845768f5e737cfe77a57e62f4043c340e4bf5eff69a9128bf02d46e02ffe5652d90707a72fda704549202e2880798",
    "275936f9983ed947eb137edafa122a1c8536460c030203010001a350304e301d0603551d0e041604146acee6879acf38",
    "97fd81a8e279958f1adeab2222301f0603551d230418301680146acee6879acf3897fd81a8e279958f1adeab2222300c",
    "0603551d13040530030101ff300d06092a864886f70d01010505000382010100568deb00d5f0323b21de5b0f20fba93e",
    "eae856215479f7bab353d1f6f659e1ca00fac523dfa698ac483023d6c346a956d10b8e4d47741e858764bdf44cb57444",
    "a0a8e16ca3c303c28099c1ce8960bda4b6f145b998d5b201d24570dc12c8175ff2ee0003c0bf0be29feb9be33c43aba9",
    "590b44a8ff92f2b238e6232bd42604899637954ec1f1bc8e6e05eff12eb7ef6a2c0fbfb0d3d2f9eee2f3130333fa52f6",
    "bcb2e594f91fdc1ed5aaacef0bc5bfecf91456693975458dd1fda46f1da260e9609460b8cc1487f1384a0cf3096ca301",
    "ce03fe0e174672b581f3d11b502498d480e6709e1d84380ffc4efc953b7690728b530b3da5b92dcd6dc4a94bd6c3a845",
    "160303014d0c0001490300174104c7762bf06c2cb7834f948d61d559364bdd45e4461d30461eff3159e6f19c0b297bfc",
    "31ff7bd08be3d80a148e6f706a455db1eb49145f2e675aefa4a657ed9e1d04010100122c126ea0965828057bea326ec8",
    "9113aea4f15ce88c94349a9813438c5252d18e0249d757e875dd38c881098ef499ace1f4ce123db2776146a53effa6d7",
    "90c571a0d71c9c0058ef389066d7546683af1a3af543b8fc51c2e2658ff8e3218897eab149acb2eacee1f9badf6b4f0a",
    "d4851817fe203f08b258e73cd43095d94a4224bb963c01152e472a03743399e6f18a1febb050cb0bb299a1145cbd8fb7",
    "0d00ca2385a1d00d6e33168c65bb368fb3fbb22797887d78e144e9f49c31258f980245fa7b19d38666f63f178157d61f",
    "23cfa636628dce4707cd4fd4041c5b1e7567393d15b1ef367788f6d6262ea3f4b8c64e5b0b8f6231074ee600b23e8283",
    "51c716030300040e000000",
);

/// Same capture, frame 8: ClientKeyExchange, ChangeCipherSpec, encrypted Finished.
const JA4TLS_CLIENT_FINISH: &str = concat!(
    "1603030046100000424104e2445f4798648f0c2cc855ff1621f2b5d17d052ed258aab5de767446ca0a60df4cb6c59a94",
    "fe510fc2a891114f226a3d6e2dc2e68652c203f0359585237f94e314030300010116030300280000000000000000a4d9",
    "e428978bdca7c3fd67ec50a849677368847fa075880f0905e81789c19c90",
);

/// Same capture, frame 9: NewSessionTicket, ChangeCipherSpec, encrypted Finished.
const JA4TLS_SERVER_FINISH: &str = concat!(
    "16030300ba040000b60000012c00b0ef14f3a85ef91e3a40aa0b2b5aa0ac73912f3fd00aac67a8fb76a4aede32317bb5",
    "2d8ef6a6b3c61fbbc3a9a5a5a4ca36c6d0c21b42883e5c40e02481f38f939d0c80bcceba1af2b785c9d334c26e82c766",
    "7f7eda93639d632e1540cf902c850dd1802b6b9ab275bfe2f1ad41f83fc95e7120d5814915d5065c413d06f730f2d4f3",
    "e2b9bfb35d3a8894af0ca2f66d91cc79fd0cf5f6c1784471fe84fc1c0e8e8ab5121e7be74e1660c99dfbc41daa0da414",
    "030300010116030300287f95d76d670e41ea089316584ec468854925259fd7ca9636539fc21368a3614ca12f6a05e6cb",
    "d7e6",
);

/// nDPI `tests/cfgs/default/pcap/tls_ech.pcapng`, frame 4: a Chrome TLS 1.3 ClientHello with GREASE, SNI performance.radar.cloudflare.com, ALPN h2,http/1.1 and ECH.
const ECH_CH: &str = concat!(
    "16030102430100023f03031d2866261a24cc0c15c6deba5b0e971a19a23b72524d3a1ca2acea56d01fdbbe20e09ca0ae",
    "22123a165f0100faf20dfb792cf518b9400a8bb52ef80b3c06059cd90020aaaa130113021303c02bc02fc02cc030cca9",
    "cca8c013c014009c009d002f0035010001d66a6a00000033002b00291a1a000100001d002074494288d7ffc1faa04696",
    "8556f646b024a855feed27c793e8085413aa74113600230000ff01000100002d00020101001b0003020002000a000a00",
    "081a1a001d001700180017000000050005010000000000120000002b000706dada03040303000d001200100403080404",
    "01050308050501080606010010000e000c02683208687474702f312e31000000250023000020706572666f726d616e63",
    "652e72616461722e636c6f7564666c6172652e636f6dfe0d00fa0000010001d800209557c100c71bf776929056d02159",
    "1f6515001dc1df1125b92408d98681a5a16700d00df0970d9f7cb426c059b1e0fe95fd7c22f8a5444d65321496fa8578",
    "1e4c5e31465cc703e3368adc8b46a6aab2d9d2bdee3004e5d5c0898b0355317f3212d160e1e806aa45cc3e0a35150607",
    "18c976025afd3f04b96dbd039a99f4a7d98821a9adaa372829dab7bc9965959a5a8f4ee36506cd1baba08bd2597f4644",
    "03dcfeed9a3c49f2b82e53a5ca8d09ea43158b58c78786a72c6cfabb9999fa31aaae2a2f54142f47befcf542c8053058",
    "4e2583d678322700f69cb23bf6cca0810c3def3ca164d3dfeb617e7b64dbe76e6489c4da000b00020100446900050003",
    "026832fafa000100",
);

/// Same capture, frame 6, its first two records: ServerHello (TLS 1.3, TLS_AES_128_GCM_SHA256) and ChangeCipherSpec.
const ECH_SH: &str = concat!(
    "160303007a0200007603033f88a40e4664d1bb187d9f772d530e429734423b417a3a11cdd140e8fe06a3f220e09ca0ae",
    "22123a165f0100faf20dfb792cf518b9400a8bb52ef80b3c06059cd9130100002e00330024001d0020dea41bfde6fad5",
    "4bb2610fa7f848bfad2fa0c52abc5b2fda4c6da9dc9cfaaf39002b00020304140303000101",
);

/// nDPI `443-curl.pcap`, frame 4: curl's ClientHello (TLS 1.2, SNI www.ntop.org, ALPN h2,http/1.1).
const CURL_CH: &str = concat!(
    "1603010200010001fc03033e3841edcc20f6d0e5f7167ab7ee91a800c8ef70c2d624c7c7943a24026d9fbc000086cc14",
    "cc13cc15c030c02cc028c024c014c00a00a3009f006b006a00390038ff8500c400c3008800870081c032c02ec02ac026",
    "c00fc005009d003d003500c00084c02fc02bc027c023c013c00900a2009e006700400033003200be00bd00450044c031",
    "c02dc029c025c00ec004009c003c002f00ba0041c012c00800160013c00dc003000a00ff0100014d00000011000f0000",
    "0c7777772e6e746f702e6f7267000b000403000102000a003a0038000e000d0019001c000b000c001b00180009000a00",
    "1a00160017000800060007001400150004000500120013000100020003000f00100011000d00260024060106020603ef",
    "ef050105020503040104020403eeeeeded030103020303020102020203337400000010000e000c02683208687474702f",
    "312e31001500ae0000000000000000000000000000000000000000000000000000000000000000000000000000000000",
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
    "00000000000000000000000000000000000000000000000000000000000000000000000000",
);

/// Same capture, frame 6, its first record: the ServerHello (ALPN h2, 0xc02f).
const CURL_SH: &str = concat!(
    "16030300660200006203038f72dd2e35dcf5ddf38ae75db855d1610b4db32937cb20cd3187eec12057fb2520ea8fcd1d",
    "a8f8635bd5df2a45b603764dd7cfb5f82666ff77fd47635bf9a8f0cbc02f00001aff0100010000000000000b00040300",
    "0102001000050003026832",
);

/// nDPI `tls_alert.pcap`, frame 4: a TLS 1.0 ClientHello (SNI www.google-analytics.com).
const ALERT_CH: &str = concat!(
    "16030100c2010000be030152db35f3eaa1188bf1e193fccf333e5873f435bbdc1c481817853f5476256a3a000012002f",
    "003300350039c009c00ac013c014560001000083ff010001000000001d001b0000187777772e676f6f676c652d616e61",
    "6c79746963732e636f6d00170000000500050100000000337400000012000000100030002e0268320568322d31360568",
    "322d31350568322d313408737064792f332e3106737064792f3308687474702f312e31000b00020100000a000a000800",
    "1d001700180019",
);

/// Same capture, frame 6: fatal alert protocol_version (70) from the server.
const ALERT_PROTOCOL_VERSION: &str = "15030100020246";

/// nDPI `dns2tcp_tunnel.pcap`, frame 4: a TLS 1.3 ClientHello without SNI.
const DNS2TCP_CH: &str = concat!(
    "1603010100010000fc030332aa4b6da9c7f093a68efc61ee3375d01ae99e61bbc75ec52a5f801fca3f233c2015b82f28",
    "0426d16fc70a9f3e306b3c125738fe0c56e8e45c02949577e98cf43c0026c02fc030c02bc02ccca8cca9c013c009c014",
    "c00a009c009d002f0035c012000a1301130313020100008d33740000000500050100000000000a000a0008001d001700",
    "180019000b00020100000d001a0018080404030807080508060401050106010503060302010203ff010001000010000e",
    "000c02683208687474702f312e3100120000002b00050403040303003300260024001d0020d8a2fe95a7dab891b066af",
    "9f2fecb0e4e727a6f1209c4ec2a90a19349ea79c74",
);

/// Same capture, frame 6, first record: the ServerHello (TLS 1.3).
const DNS2TCP_SH: &str = concat!(
    "160303007a020000760303977ee00c96830f2691df8e9f23f41bdb6fe020c3b1c956266f874494fa2598d42015b82f28",
    "0426d16fc70a9f3e306b3c125738fe0c56e8e45c02949577e98cf43c130100002e00330024001d0020059a2add468e0e",
    "069e598b3858f9bbc84f2a403aaf55307c3ff65e55d13d0526002b00020304",
);

/// suricata-verify `tests/tls-duplicate-hello/input.pcap`, frame 7: the first of two ClientHellos.
const DUP_CH: &str = concat!(
    "160301012401000120030339a503494c046e85568afb480faeb91fb861a479b4f9ef85dfa60844a0b86f6700003a1302",
    "130313011304c02ccca9c0adc00ac02bc0acc009c030cca8c014c02fc013009dc09d0035009cc09c002f009fccaac09f",
    "0039009ec09e0033010000bd000500050100000000000a000400020017000b00020100000d0020001e04010809080404",
    "0308070501080a080505030601080b08060603020102030016000000170000002300000033004700450017004104519c",
    "7aa7e7b5163a55d3d116c293f717b123909e9bda1bf256972c3ddb2b730db0016c13ae75255b38d1c7591e3611381e20",
    "e614ee9cba9402dae5ea6159e749002b0009080304030303020301ff010001000000000e000c0000096c6f63616c686f",
    "7374002d0003020100",
);

/// nDPI `google_ssl.pcap`, frame 4: an SSL 2.0-style ClientHello offering TLS 1.0.
const SSLV2_CH: &str = concat!(
    "807c01030100630000001000003900003800003500001600001300000a0700c000003300003200002f03008000006600",
    "000500000401008008008000006300006200006100001500001200000906004000006500006400006000001400001100",
    "0008000006040080000003020080447674058ab9c9a5abbb06702cc6cf1f",
);

// ---------------------------------------------------------------- helpers

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2));
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}

fn idx(dir: Direction) -> usize {
    match dir {
        ToServer => 0,
        ToClient => 1,
    }
}

/// Plays the analyzer: keeps what `parse` left and hands it back with the
/// next bytes; stops feeding a direction after an error.
struct Driver {
    s: Session,
    carry: [Vec<u8>; 2],
    dead: [bool; 2],
    out: Vec<Call>,
}

impl Driver {
    fn new() -> Self {
        Driver::with(&SessionConfig::default())
    }

    fn with(cfg: &SessionConfig) -> Self {
        Driver {
            s: Session::new(cfg, Transport::Tcp),
            carry: [Vec::new(), Vec::new()],
            dead: [false; 2],
            out: Vec::new(),
        }
    }

    fn send(&mut self, dir: Direction, bytes: &[u8], ts: i64) -> Result<(), L7Error> {
        let i = idx(dir);
        if self.dead[i] {
            return Ok(());
        }
        self.carry[i].extend_from_slice(bytes);
        let buf = std::mem::take(&mut self.carry[i]);
        match self.s.parse(dir, &buf, ts, &mut self.out) {
            Ok(n) => {
                assert!(n <= buf.len(), "consumed {n} of {}", buf.len());
                self.carry[i] = buf[n..].to_vec();
                Ok(())
            }
            Err(e) => {
                self.dead[i] = true;
                Err(e)
            }
        }
    }

    fn ok(&mut self, dir: Direction, bytes: &[u8], ts: i64) {
        self.send(dir, bytes, ts).expect("parse");
    }

    /// Sends `bytes` in chunks of `sizes` (cycled), one tick of time per
    /// chunk from `ts`; returns the time of the last chunk.
    fn chunks(&mut self, dir: Direction, bytes: &[u8], sizes: &[usize], mut ts: i64) -> i64 {
        let mut pos = 0;
        let mut k = 0;
        while pos < bytes.len() {
            let n = sizes[k % sizes.len()].max(1).min(bytes.len() - pos);
            self.ok(dir, &bytes[pos..pos + n], ts);
            pos += n;
            k += 1;
            ts += 1;
        }
        ts - 1
    }

    fn gap(&mut self, dir: Direction, len: u32) {
        self.carry[idx(dir)].clear();
        self.s.on_gap(dir, len);
    }

    fn finish(&mut self, ts: i64) {
        self.s.finish(ts, &mut self.out);
    }

    fn call(&self) -> &Call {
        assert_eq!(self.out.len(), 1, "calls: {:#?}", self.out);
        &self.out[0]
    }
}

fn attr<'a>(c: &'a Call, key: &str) -> Option<&'a str> {
    c.attributes.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn assert_sorted(c: &Call) {
    assert!(c.attributes.windows(2).all(|w| w[0].0 < w[1].0), "{:?}", c.attributes);
}

/// A record of content type `ct` (version 0x0303).
fn record(ct: u8, payload: &[u8]) -> Vec<u8> {
    let mut r = vec![ct, 3, 3];
    r.extend_from_slice(&u16::try_from(payload.len()).expect("record length").to_be_bytes());
    r.extend_from_slice(payload);
    r
}

fn app_data(n: usize) -> Vec<u8> {
    record(23, &(0..n).map(|i| (i * 7) as u8).collect::<Vec<_>>())
}

const CCS: [u8; 6] = [20, 3, 3, 0, 1, 1];

/// One handshake message spread over records: a record ends at each of
/// `splits` (offsets into `msg`).
fn reframe(msg: &[u8], splits: &[usize]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut from = 0;
    for &to in splits.iter().chain(std::iter::once(&msg.len())) {
        out.extend(record(22, &msg[from..to]));
        from = to;
    }
    out
}

fn client_hello_of(record_hex: &str) -> Vec<u8> {
    let rec = unhex(record_hex);
    parser::record_payload(&rec).expect("record").to_vec()
}

fn ext(typ: u16, data: &[u8]) -> Vec<u8> {
    let mut e = typ.to_be_bytes().to_vec();
    e.extend_from_slice(&u16::try_from(data.len()).expect("ext length").to_be_bytes());
    e.extend_from_slice(data);
    e
}

fn list16(items: &[u16]) -> Vec<u8> {
    let mut v = u16::try_from(items.len() * 2).expect("len").to_be_bytes().to_vec();
    for i in items {
        v.extend_from_slice(&i.to_be_bytes());
    }
    v
}

fn sni_ext(name: &str) -> Vec<u8> {
    let mut d = u16::try_from(name.len() + 3).expect("len").to_be_bytes().to_vec();
    d.push(0);
    d.extend_from_slice(&u16::try_from(name.len()).expect("len").to_be_bytes());
    d.extend_from_slice(name.as_bytes());
    ext(0, &d)
}

fn alpn_ext(protocols: &[&[u8]]) -> Vec<u8> {
    let mut l = Vec::new();
    for p in protocols {
        l.push(u8::try_from(p.len()).expect("len"));
        l.extend_from_slice(p);
    }
    let mut d = u16::try_from(l.len()).expect("len").to_be_bytes().to_vec();
    d.extend(l);
    ext(16, &d)
}

fn versions_ext(versions: &[u16]) -> Vec<u8> {
    let mut d = vec![u8::try_from(versions.len() * 2).expect("len")];
    for v in versions {
        d.extend_from_slice(&v.to_be_bytes());
    }
    ext(43, &d)
}

fn handshake_msg(typ: u8, body: &[u8]) -> Vec<u8> {
    let len = u32::try_from(body.len()).expect("len").to_be_bytes();
    let mut m = vec![typ, len[1], len[2], len[3]];
    m.extend_from_slice(body);
    m
}

/// A ClientHello message (header included).
fn client_hello_msg(version: u16, sid: &[u8], ciphers: &[u16], exts: &[Vec<u8>]) -> Vec<u8> {
    let mut b = version.to_be_bytes().to_vec();
    b.extend_from_slice(&[0x11; 32]);
    b.push(u8::try_from(sid.len()).expect("sid"));
    b.extend_from_slice(sid);
    b.extend(list16(ciphers));
    b.extend_from_slice(&[1, 0]);
    let all: Vec<u8> = exts.concat();
    b.extend_from_slice(&u16::try_from(all.len()).expect("len").to_be_bytes());
    b.extend(all);
    handshake_msg(1, &b)
}

/// A ServerHello message (header included).
fn server_hello_msg(version: u16, random: [u8; 32], sid: &[u8], cipher: u16, exts: &[Vec<u8>]) -> Vec<u8> {
    let mut b = version.to_be_bytes().to_vec();
    b.extend_from_slice(&random);
    b.push(u8::try_from(sid.len()).expect("sid"));
    b.extend_from_slice(sid);
    b.extend_from_slice(&cipher.to_be_bytes());
    b.push(0);
    let all: Vec<u8> = exts.concat();
    b.extend_from_slice(&u16::try_from(all.len()).expect("len").to_be_bytes());
    b.extend(all);
    handshake_msg(2, &b)
}

/// xorshift64: deterministic noise without a crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

// ---------------------------------------------------------------- probe

#[test]
fn probe_matches_hellos_and_alerts() {
    let ch = unhex(JA4TLS_CH);
    assert_eq!(probe(&ch, ToServer, Transport::Tcp), Probe::Match);
    for n in 0..6 {
        assert_eq!(probe(&ch[..n], ToServer, Transport::Tcp), Probe::NeedMore, "{n} bytes");
    }
    assert_eq!(probe(&ch[..6], ToServer, Transport::Tcp), Probe::Match);
    assert_eq!(probe(&unhex(ECH_CH), ToServer, Transport::Tcp), Probe::Match);
    assert_eq!(probe(&ch, ToClient, Transport::Tcp), Probe::NoMatch, "a ClientHello from the server");
    assert_eq!(probe(&ch, ToServer, Transport::Udp), Probe::NoMatch, "DTLS is out of scope");

    let sh = unhex(ECH_SH);
    assert_eq!(probe(&sh, ToClient, Transport::Tcp), Probe::Match);
    assert_eq!(probe(&sh[..3], ToClient, Transport::Tcp), Probe::NeedMore);
    assert_eq!(probe(&sh, ToServer, Transport::Tcp), Probe::NoMatch);

    let alert = unhex(ALERT_PROTOCOL_VERSION);
    assert_eq!(probe(&alert, ToClient, Transport::Tcp), Probe::Match);
    assert_eq!(probe(&[21, 3, 3, 0, 2, 2, 40], ToClient, Transport::Tcp), Probe::Match);
    assert_eq!(probe(&alert, ToServer, Transport::Tcp), Probe::NoMatch);
}

#[test]
fn probe_rejects_other_protocols() {
    let no = |data: &[u8], dir| assert_eq!(probe(data, dir, Transport::Tcp), Probe::NoMatch, "{data:?}");
    no(b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", ToServer);
    no(b"HTTP/1.1 400 Bad Request\r\n\r\n", ToClient);
    // DNS over TCP: a query for example.com A, and its answer.
    let dns = unhex("001d123401000001000000000000076578616d706c6503636f6d0000010001");
    no(&dns, ToServer);
    no(&dns, ToClient);
    // An SSL 2.0-style hello whose lengths do not add up.
    no(&unhex("802f0100020015000000100100800200800300800400800500800600400700c0"), ToServer);
    no(&unhex("802e0100020014000000100100800200800300800400800500800600400700c0"), ToServer);
    // Application data, a bad version, an oversized record, an empty one.
    no(&app_data(10), ToClient);
    no(&[22, 3, 5, 0, 50, 1], ToServer);
    no(&[22, 3, 3, 0x48, 0x01, 1], ToServer);
    no(&[22, 3, 3, 0, 0, 1], ToServer);
    no(&[21, 3, 3, 0, 2, 7, 40], ToClient);
    no(&[21, 3, 3, 0, 26, 0, 0], ToClient);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..2000 {
        let n = 6 + rng.below(60);
        let data = rng.bytes(n);
        for dir in [ToServer, ToClient] {
            if data[0] != 22 && data[0] != 21 {
                no(&data, dir);
            }
        }
    }
}

#[test]
fn probe_matches_sslv2_client_hello() {
    let ch = unhex(SSLV2_CH);
    assert_eq!(probe(&ch, ToServer, Transport::Tcp), Probe::Match);
    for n in 0..11 {
        assert_eq!(probe(&ch[..n], ToServer, Transport::Tcp), Probe::NeedMore, "{n} bytes");
    }
    assert_eq!(probe(&ch, ToClient, Transport::Tcp), Probe::NoMatch);
    // A pure SSL 2.0 hello (version 0x0002).
    let v2 = unhex("802e0100020015000000100100800200800300800400800500800600400700c0");
    assert_eq!(probe(&v2, ToServer, Transport::Tcp), Probe::Match);
}

// ---------------------------------------------------------------- fingerprints

/// tshark's JA3 (corpus `expected/*/*.tls.tsv`) and the JA4 of each
/// ClientHello.
#[test]
fn ja3_and_ja4_of_real_client_hellos() {
    let vectors: [(&str, &str, &str); 5] = [
        // JA4 from suricata-verify tests/ja4-tls/test.yaml.
        (JA4TLS_CH, "308b0bd904abbef5e0034a1ff7a78920", "t12i1810s1_27d4652c4487_06a4338d0495"),
        // JA4 from nDPI's expected output (tls_ech.pcapng.out), Chrome's well-known one.
        (ECH_CH, "6820f114cf3b0809ffdcb30cb277848a", "t13d1516h2_8daaf6152771_02713d6af862"),
        // JA4 from nDPI (443-curl.pcap.out).
        (CURL_CH, "2a26b1a62e40d25d4de3babc9d532f30", "t12d6707h2_2955a3196ffa_c83f907a73d3"),
        // JA4 from nDPI (tls_alert.pcap.out).
        (ALERT_CH, "d78489b860c8bf7838a6ff0b4d131541", "t10d0909h2_61c4dbd01224_cc731f12afbb"),
        // nDPI prints t13d1910h2_9dc949149365_d811adc85aab: its `d` for a
        // ClientHello without server_name contradicts the JA4 spec ("i"
        // when there is no SNI extension, as Suricata does above); the
        // hashes agree.
        (DNS2TCP_CH, "547df21d727c7b3a5dcb59aa0fd97c2c", "t13i1910h2_9dc949149365_d811adc85aab"),
    ];
    for (hex, ja3, ja4) in vectors {
        let msg = client_hello_of(hex);
        let ch = parser::client_hello(&msg).expect("ClientHello");
        assert_eq!(parser::ja3_hash(&parser::ja3_string(&ch)), ja3, "{}", parser::ja3_string(&ch));
        assert_eq!(parser::ja4(&ch), ja4);
    }
}

/// Suricata's JA3 string of a ClientHello (tests/tls-duplicate-hello/test.yaml),
/// and tshark's JA3 of it.
#[test]
fn ja3_string_matches_suricata() {
    let msg = client_hello_of(DUP_CH);
    let ch = parser::client_hello(&msg).expect("ClientHello");
    assert_eq!(parser::ja3_hash(&parser::ja3_string(&ch)), "43202faa1c8c1760d6f7f4bd9adde4ab");
    assert_eq!(
        parser::ja3_string(&ch),
        "771,4866-4867-4865-4868-49196-52393-49325-49162-49195-49324-49161-49200-52392-49172-49199-49171-157-\
         49309-53-156-49308-47-159-52394-49311-57-158-49310-51,5-10-11-13-22-23-35-51-43-65281-0-45,23,0"
    );
}

/// tshark's JA3S of the ServerHellos.
#[test]
fn ja3s_of_real_server_hellos() {
    let flight = unhex(JA4TLS_SERVER_FLIGHT);
    let vectors: [(&[u8], &str); 4] = [
        (&flight, "ccc514751b175866924439bdbb5bba34"),
        (&unhex(ECH_SH), "eb1d94daa7e0344597e756a1fb6e7054"),
        (&unhex(CURL_SH), "ae53107a2e47ea20c72ac44821a728bf"),
        (&unhex(DNS2TCP_SH), "eb1d94daa7e0344597e756a1fb6e7054"),
    ];
    for (rec, ja3s) in vectors {
        let payload = parser::record_payload(rec).expect("record");
        let sh = parser::server_hello(payload).expect("ServerHello");
        assert_eq!(parser::ja3_hash(&parser::ja3s_string(&sh)), ja3s, "{}", parser::ja3s_string(&sh));
    }
}

#[test]
fn grease_values() {
    for i in 0..16u16 {
        assert!(parser::is_grease(i << 12 | 0x0a00 | i << 4 | 0x0a));
    }
    for v in [0x0a0b, 0x1a2a, 0x0303, 0x1301, 0xaa0a, 0x0000] {
        assert!(!parser::is_grease(v), "{v:#06x}");
    }
}

#[test]
fn grease_is_left_out_of_ja3_and_ja4() {
    let msg = client_hello_msg(
        0x0303,
        &[],
        &[0x0a0a, 0x1301, 0x1302],
        &[
            ext(0x1a1a, &[]),
            sni_ext("Example.COM"),
            ext(10, &list16(&[0x2a2a, 29, 23])),
            ext(11, &[1, 0]),
            alpn_ext(&[b"h2", b"http/1.1"]),
            versions_ext(&[0x3a3a, 0x0304, 0x0303]),
            ext(13, &list16(&[0x0403, 0x0804])),
            ext(0xfafa, &[0]),
        ],
    );
    let ch = parser::client_hello(&msg).expect("ClientHello");
    assert_eq!(ch.ciphers, [0x0a0a, 0x1301, 0x1302], "the view keeps GREASE");
    assert_eq!(parser::ja3_string(&ch), "771,4865-4866,0-10-11-16-43-13,29-23,0");
    let ja4 = parser::ja4(&ch);
    assert!(ja4.starts_with("t13d0206h2_"), "{ja4}");
    let want_b = "sha256(1301,1302)";
    let _ = want_b;
    // The same hello without its GREASE values has the same fingerprints.
    let plain = client_hello_msg(
        0x0303,
        &[],
        &[0x1301, 0x1302],
        &[
            sni_ext("example.com"),
            ext(10, &list16(&[29, 23])),
            ext(11, &[1, 0]),
            alpn_ext(&[b"h2", b"http/1.1"]),
            versions_ext(&[0x0304, 0x0303]),
            ext(13, &list16(&[0x0403, 0x0804])),
        ],
    );
    let plain = parser::client_hello(&plain).expect("ClientHello");
    assert_eq!(parser::ja4(&plain), ja4);
    assert_eq!(parser::ja3_string(&plain), parser::ja3_string(&ch));

    // The real Chrome hello: 16 suites and 18 extensions on the wire,
    // one and two of them GREASE.
    let chrome = client_hello_of(ECH_CH);
    let chrome = parser::client_hello(&chrome).expect("ClientHello");
    assert_eq!(chrome.ciphers.len(), 16);
    assert_eq!(chrome.extensions.len(), 18);
    assert!(parser::ja4(&chrome).starts_with("t13d1516h2_"));
    assert!(!parser::ja3_string(&chrome).contains("2570"), "0x0a0a");
}

#[test]
fn ja4_edge_cases() {
    let ja4_a = |exts: &[Vec<u8>], ciphers: &[u16]| {
        let msg = client_hello_msg(0x0303, &[], ciphers, exts);
        let ch: ClientHello<'_> = parser::client_hello(&msg).expect("ClientHello");
        parser::ja4(&ch)
    };
    // No ALPN, no SNI, no ciphers, no extensions.
    assert_eq!(ja4_a(&[], &[]), "t12i000000_000000000000_000000000000");
    // One-character ALPN; non-alphanumeric ALPN bytes use hex digits.
    assert!(ja4_a(&[alpn_ext(&[b"h"])], &[0x1301]).starts_with("t12i0101hh_"));
    assert!(ja4_a(&[alpn_ext(&[&[0xab, 0x00, 0xcd]])], &[0x1301]).starts_with("t12i0101ad_"));
    // Only SNI and ALPN: both counted, neither hashed.
    let j = ja4_a(&[sni_ext("a.b"), alpn_ext(&[b"http/1.1"])], &[0x1301]);
    assert!(j.starts_with("t12d0102h1_") && j.ends_with("_000000000000"), "{j}");
}

// ---------------------------------------------------------------- session

#[test]
fn tls13_client_hello_byte_by_byte() {
    let ch = unhex(ECH_CH);
    let sh = unhex(ECH_SH);
    let mut d = Driver::new();
    let last = d.chunks(ToServer, &ch, &[1], 1000);
    assert_eq!(last, 1000 + ch.len() as i64 - 1);
    assert!(d.carry[0].is_empty());
    d.chunks(ToClient, &sh, &[1], 5000);
    let flight = app_data(2000);
    d.ok(ToClient, &flight, 6000);
    assert!(d.out.is_empty(), "the client has not finished yet");
    // change_cipher_spec from the client after the ServerHello ends the
    // handshake: the call is emitted there, before the encrypted Finished.
    d.ok(ToServer, &[&CCS[..], &app_data(53)].concat(), 7000);

    let c = d.call().clone();
    assert_eq!(c.request_ts, Some(1000));
    assert_eq!(c.response_first_ts, Some(5000));
    assert_eq!(c.response_end_ts, Some(6000));
    assert_eq!(c.request_type.as_deref(), Some("ClientHello"));
    assert_eq!(c.request_domain.as_deref(), Some("performance.radar.cloudflare.com"));
    assert_eq!(c.request_resource.as_deref(), Some("performance.radar.cloudflare.com"));
    assert_eq!(c.version.as_deref(), Some("TLSv1.3"));
    assert_eq!(c.status, CallStatus::Ok);
    assert_eq!(c.response_code, None);
    assert_eq!(c.request_bytes, (ch.len() + CCS.len()) as u64);
    assert_eq!(c.response_bytes, (sh.len() + flight.len()) as u64);
    assert_sorted(&c);
    assert_eq!(attr(&c, "tls.sni"), Some("performance.radar.cloudflare.com"));
    assert_eq!(attr(&c, "tls.alpn"), Some("h2,http/1.1"));
    assert_eq!(attr(&c, "tls.alpn_selected"), None, "TLS 1.3 sends it encrypted");
    assert_eq!(attr(&c, "tls.cipher"), Some("TLS_AES_128_GCM_SHA256"));
    assert_eq!(attr(&c, "tls.client_version"), Some("TLSv1.2"));
    assert_eq!(attr(&c, "tls.supported_versions"), Some("TLSv1.3,TLSv1.2"));
    assert_eq!(attr(&c, "tls.ja3"), Some("6820f114cf3b0809ffdcb30cb277848a"));
    assert!(attr(&c, "tls.ja3_string").is_some_and(|s| s.starts_with("771,4865-4866-4867-49195-")));
    assert_eq!(attr(&c, "tls.ja3s"), Some("eb1d94daa7e0344597e756a1fb6e7054"));
    assert_eq!(attr(&c, "tls.ja4"), Some("t13d1516h2_8daaf6152771_02713d6af862"));
    assert_eq!(attr(&c, "tls.resumed"), None, "TLS 1.3 echoes the session id");

    // Encrypted traffic afterwards is consumed unread.
    d.ok(ToClient, &app_data(300), 8000);
    d.ok(ToServer, b"not even TLS", 8001);
    assert!(d.carry.iter().all(Vec::is_empty));
    d.finish(9000);
    assert_eq!(d.out.len(), 1);
}

#[test]
fn client_hello_spanning_records() {
    let msg = client_hello_of(ECH_CH);
    for splits in [vec![1], vec![2], vec![3], vec![4], vec![5], vec![300], vec![msg.len() - 1], vec![2, 3, 100, 101]] {
        let bytes = reframe(&msg, &splits);
        let mut d = Driver::new();
        d.chunks(ToServer, &bytes, &[7, 300, 1], 10);
        d.ok(ToClient, &unhex(ECH_SH), 1000);
        d.finish(2000);
        let c = d.call();
        assert_eq!(c.request_ts, Some(10), "{splits:?}");
        assert_eq!(c.request_domain.as_deref(), Some("performance.radar.cloudflare.com"), "{splits:?}");
        assert_eq!(attr(c, "tls.ja4"), Some("t13d1516h2_8daaf6152771_02713d6af862"), "{splits:?}");
        assert_eq!(c.status, CallStatus::Ok);
    }
}

/// A post-quantum-sized ClientHello (~1.8 KB key share) in two records,
/// in TCP segments that do not follow the record boundaries.
#[test]
fn large_client_hello_across_records_and_segments() {
    let mut key_share = vec![0, 0];
    key_share.extend_from_slice(&0x11ecu16.to_be_bytes());
    key_share.extend_from_slice(&1216u16.to_be_bytes());
    key_share.extend(std::iter::repeat_n(0x5a, 1216));
    key_share.extend_from_slice(&[0, 0x1d, 0, 32]);
    key_share.extend_from_slice(&[7; 32]);
    let n = u16::try_from(key_share.len() - 2).expect("len").to_be_bytes();
    key_share[..2].copy_from_slice(&n);
    let msg = client_hello_msg(
        0x0303,
        &[9; 32],
        &[0x1301, 0x1302, 0x1303],
        &[sni_ext("pq.example"), alpn_ext(&[b"h2"]), versions_ext(&[0x0304]), ext(51, &key_share), ext(21, &[0; 400])],
    );
    assert!(msg.len() > 1700);
    let bytes = reframe(&msg, &[1024]);
    let mut d = Driver::new();
    d.chunks(ToServer, &bytes, &[1448], 1);
    let sh = server_hello_msg(0x0303, [3; 32], &[9; 32], 0x1301, &[ext(43, &[3, 4])]);
    d.ok(ToClient, &record(22, &sh), 10);
    d.ok(ToClient, &app_data(100), 11);
    d.ok(ToServer, &app_data(60), 12);
    let c = d.call();
    assert_eq!(c.request_domain.as_deref(), Some("pq.example"));
    assert_eq!(attr(c, "tls.alpn"), Some("h2"));
    assert_eq!(c.version.as_deref(), Some("TLSv1.3"));
    assert_eq!((c.request_ts, c.response_first_ts, c.response_end_ts), (Some(1), Some(10), Some(11)));
    assert_eq!(attr(c, "tls.resumed"), None);
}

#[test]
fn tls12_handshake_with_server_hello_done() {
    let ch = unhex(JA4TLS_CH);
    let flight = unhex(JA4TLS_SERVER_FLIGHT);
    let client_finish = unhex(JA4TLS_CLIENT_FINISH);
    let server_finish = unhex(JA4TLS_SERVER_FINISH);
    for sizes in [vec![flight.len()], vec![500], vec![1], vec![5, 1000, 13]] {
        let mut d = Driver::new();
        d.ok(ToServer, &ch, 100);
        let last = d.chunks(ToClient, &flight, &sizes, 200);
        assert!(d.out.is_empty());
        d.ok(ToServer, &client_finish, 10_000);
        assert!(d.out.is_empty(), "the server has not sent change_cipher_spec yet");
        d.ok(ToClient, &server_finish, 10_100);
        let c = d.call();
        assert_eq!(c.request_ts, Some(100));
        assert_eq!(c.response_first_ts, Some(200));
        assert_eq!(c.response_end_ts, Some(last), "the ServerHelloDone record, {sizes:?}");
        assert_eq!(c.version.as_deref(), Some("TLSv1.2"));
        assert_eq!(c.status, CallStatus::Ok);
        assert_eq!(c.request_domain, None);
        assert_eq!(attr(c, "tls.sni"), None);
        assert_eq!(attr(c, "tls.alpn"), Some("spdy/3.1,http/1.1"));
        assert_eq!(attr(c, "tls.cipher"), Some("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"));
        assert_eq!(attr(c, "tls.ja3"), Some("308b0bd904abbef5e0034a1ff7a78920"));
        assert_eq!(attr(c, "tls.ja3s"), Some("ccc514751b175866924439bdbb5bba34"));
        assert_eq!(attr(c, "tls.ja4"), Some("t12i1810s1_27d4652c4487_06a4338d0495"));
        assert_eq!(attr(c, "tls.supported_versions"), None);
        assert_eq!(c.request_bytes, (ch.len() + client_finish.len()) as u64);
        // Up to the server's change_cipher_spec, where the call is emitted.
        assert_eq!(c.response_bytes, (flight.len() + server_finish.len() - 45) as u64);
        assert_sorted(c);
    }
}

#[test]
fn tls12_resumption() {
    let sid = [0x42; 32];
    let ch = client_hello_msg(0x0303, &sid, &[0xc02f], &[sni_ext("Resume.Example")]);
    let sh = server_hello_msg(0x0303, [5; 32], &sid, 0xc02f, &[alpn_ext(&[b"http/1.1"])]);
    let mut d = Driver::new();
    d.ok(ToServer, &record(22, &ch), 1);
    d.ok(ToClient, &[record(22, &sh), CCS.to_vec()].concat(), 2);
    d.ok(ToClient, &record(22, &[0xee; 40]), 3);
    d.ok(ToServer, &[CCS.to_vec(), record(22, &[0xdd; 40])].concat(), 4);
    let c = d.call();
    assert_eq!(attr(c, "tls.resumed"), Some("true"));
    assert_eq!(attr(c, "tls.alpn_selected"), Some("http/1.1"));
    assert_eq!(c.request_domain.as_deref(), Some("resume.example"));
    assert_eq!((c.response_first_ts, c.response_end_ts), (Some(2), Some(3)), "the server's Finished");
}

#[test]
fn hello_retry_request_is_one_call() {
    let ch1 = client_hello_msg(0x0303, &[1; 32], &[0x1301], &[sni_ext("hrr.test"), versions_ext(&[0x0304])]);
    let ch2 = client_hello_msg(0x0303, &[1; 32], &[0x1301], &[sni_ext("second.test"), versions_ext(&[0x0304])]);
    let hrr = server_hello_msg(0x0303, parser::HRR_RANDOM, &[1; 32], 0x1301, &[ext(43, &[3, 4])]);
    let sh = server_hello_msg(0x0303, [8; 32], &[1; 32], 0x1302, &[ext(43, &[3, 4])]);
    let mut d = Driver::new();
    d.ok(ToServer, &record(22, &ch1), 10);
    d.ok(ToClient, &[record(22, &hrr), CCS.to_vec()].concat(), 20);
    d.ok(ToServer, &[CCS.to_vec(), record(22, &ch2)].concat(), 30);
    assert!(d.out.is_empty());
    d.ok(ToClient, &record(22, &sh), 40);
    d.ok(ToClient, &app_data(500), 41);
    d.ok(ToServer, &app_data(50), 50);
    let c = d.call();
    assert_eq!((c.request_ts, c.response_first_ts, c.response_end_ts), (Some(10), Some(20), Some(41)));
    assert_eq!(c.request_domain.as_deref(), Some("hrr.test"), "the first ClientHello");
    assert_eq!(c.version.as_deref(), Some("TLSv1.3"));
    assert_eq!(attr(c, "tls.cipher"), Some("TLS_AES_256_GCM_SHA384"));
    assert_eq!(attr(c, "tls.hello_retry_request"), Some("true"));
    assert_eq!(c.status, CallStatus::Ok);
}

#[test]
fn handshake_failure_from_server() {
    let mut d = Driver::new();
    d.ok(ToServer, &unhex(CURL_CH), 10);
    d.ok(ToClient, &[21, 3, 3, 0, 2, 2, 40], 20);
    let c = d.call();
    assert_eq!(c.status, CallStatus::ServerError);
    assert_eq!(c.response_code, Some(40));
    assert_eq!(c.response_exception.as_deref(), Some("handshake_failure"));
    assert_eq!((c.request_ts, c.response_first_ts, c.response_end_ts), (Some(10), Some(20), Some(20)));
    assert_eq!(c.request_domain.as_deref(), Some("www.ntop.org"));
    assert_eq!(c.version, None);
    assert_eq!(attr(c, "tls.ja3"), Some("2a26b1a62e40d25d4de3babc9d532f30"));
    d.finish(30);
    assert_eq!(d.out.len(), 1);
}

#[test]
fn protocol_version_alert_from_a_real_capture() {
    let mut d = Driver::new();
    d.ok(ToServer, &unhex(ALERT_CH), 10);
    d.ok(ToClient, &unhex(ALERT_PROTOCOL_VERSION), 20);
    let c = d.call();
    assert_eq!(c.status, CallStatus::ServerError);
    assert_eq!(c.response_code, Some(70));
    assert_eq!(c.response_exception.as_deref(), Some("protocol_version"));
    assert_eq!(c.request_domain.as_deref(), Some("www.google-analytics.com"));
    assert_eq!(attr(c, "tls.client_version"), Some("TLSv1.0"));
    assert_eq!(attr(c, "tls.ja3"), Some("d78489b860c8bf7838a6ff0b4d131541"));
}

#[test]
fn alert_from_client_after_server_flight() {
    let mut d = Driver::new();
    d.ok(ToServer, &unhex(JA4TLS_CH), 10);
    d.ok(ToClient, &unhex(JA4TLS_SERVER_FLIGHT), 20);
    d.ok(ToServer, &[21, 3, 3, 0, 2, 2, 48], 30);
    let c = d.call();
    assert_eq!(c.status, CallStatus::ClientError);
    assert_eq!(c.response_code, Some(48));
    assert_eq!(c.response_exception.as_deref(), Some("unknown_ca"));
    assert_eq!(c.version.as_deref(), Some("TLSv1.2"));
    assert_eq!((c.response_first_ts, c.response_end_ts), (Some(20), Some(20)));
}

#[test]
fn warning_alert_does_not_fail_the_handshake() {
    let mut d = Driver::new();
    d.ok(ToServer, &unhex(CURL_CH), 10);
    d.ok(ToClient, &[unhex(CURL_SH), vec![21, 3, 3, 0, 2, 1, 112]].concat(), 20);
    d.finish(30);
    let c = d.call();
    assert_eq!(c.status, CallStatus::Ok);
    assert_eq!(c.response_code, None);
    assert_eq!(attr(c, "tls.warning_alert"), Some("unrecognized_name"));
    assert_eq!(attr(c, "tls.alpn_selected"), Some("h2"));
    assert_eq!(attr(c, "tls.ja3s"), Some("ae53107a2e47ea20c72ac44821a728bf"));
    assert_eq!(attr(c, "tls.ja4"), Some("t12d6707h2_2955a3196ffa_c83f907a73d3"));
}

#[test]
fn unknown_alert_and_cipher_names() {
    assert_eq!(parser::alert_name(40), Some("handshake_failure"));
    assert_eq!(parser::alert_name(112), Some("unrecognized_name"));
    assert_eq!(parser::alert_name(200), None);
    assert_eq!(parser::cipher_name(0x1301), "TLS_AES_128_GCM_SHA256");
    assert_eq!(parser::cipher_name(0xc02f), "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256");
    assert_eq!(parser::cipher_name(0xfefe), "0xfefe");
    assert_eq!(parser::version_name(0x7f1c), "0x7f1c");
    let mut d = Driver::new();
    d.ok(ToServer, &unhex(CURL_CH), 10);
    d.ok(ToClient, &[21, 3, 3, 0, 2, 2, 200], 20);
    assert_eq!(d.call().response_exception.as_deref(), Some("alert_200"));
}

#[test]
fn client_hello_without_answer_times_out() {
    let mut d = Driver::new();
    d.ok(ToServer, &unhex(CURL_CH), 100);
    d.s.expire(100, &mut d.out);
    assert!(d.out.is_empty());
    d.s.expire(101, &mut d.out);
    let c = d.call();
    assert_eq!(c.status, CallStatus::Timeout);
    assert_eq!(c.request_domain.as_deref(), Some("www.ntop.org"));
    assert_eq!(c.response_first_ts, None);
    d.finish(200);
    assert_eq!(d.out.len(), 1);

    let mut d = Driver::new();
    d.ok(ToServer, &unhex(CURL_CH), 100);
    d.finish(200);
    assert_eq!(d.call().status, CallStatus::Timeout);
}

#[test]
fn server_hello_without_client_hello() {
    let mut d = Driver::new();
    d.ok(ToClient, &unhex(CURL_SH), 50);
    d.finish(60);
    let c = d.call();
    assert_eq!((c.request_ts, c.request_type.as_deref(), c.request_domain.as_deref()), (None, None, None));
    assert_eq!((c.response_first_ts, c.response_end_ts), (Some(50), Some(50)));
    assert_eq!(c.version.as_deref(), Some("TLSv1.2"));
    assert_eq!(attr(c, "tls.alpn_selected"), Some("h2"));
    assert_eq!(attr(c, "tls.ja3"), None);
    assert_eq!(c.status, CallStatus::Ok);
}

#[test]
fn gap_before_server_hello_is_unparsed() {
    let mut d = Driver::new();
    d.ok(ToServer, &unhex(CURL_CH), 10);
    let sh = unhex(CURL_SH);
    d.ok(ToClient, &sh[..50], 20);
    d.gap(ToClient, 100);
    d.ok(ToClient, &sh[50..], 21);
    d.ok(ToClient, &unhex(JA4TLS_SERVER_FLIGHT), 22);
    assert!(d.out.is_empty());
    d.finish(30);
    let c = d.call();
    assert_eq!(c.status, CallStatus::Unparsed);
    assert_eq!(c.version, None);
    assert_eq!(c.request_domain.as_deref(), Some("www.ntop.org"));
}

#[test]
fn gap_in_client_hello_keeps_the_server_side() {
    let ch = unhex(ECH_CH);
    let mut d = Driver::new();
    d.ok(ToServer, &ch[..100], 10);
    d.gap(ToServer, 200);
    d.ok(ToServer, &ch[300..], 11);
    d.ok(ToClient, &unhex(ECH_SH), 20);
    d.ok(ToClient, &app_data(10), 21);
    // The client direction is lost and the server is done: nothing more to learn.
    let c = d.call();
    assert_eq!(c.request_ts, Some(10));
    assert_eq!(c.request_type.as_deref(), Some("ClientHello"));
    assert_eq!(c.request_domain, None);
    assert_eq!(attr(c, "tls.ja3"), None);
    assert_eq!(c.version.as_deref(), Some("TLSv1.3"));
    assert_eq!(c.status, CallStatus::Ok);
}

#[test]
fn gap_after_handshake_is_harmless() {
    let mut d = Driver::new();
    d.ok(ToServer, &unhex(ECH_CH), 1);
    d.ok(ToClient, &[unhex(ECH_SH), app_data(100)].concat(), 2);
    d.ok(ToServer, &[&CCS[..], &app_data(40)].concat(), 3);
    assert_eq!(d.out.len(), 1);
    d.gap(ToClient, 1000);
    d.ok(ToClient, &[1, 2, 3], 4);
    d.ok(ToClient, &app_data(10), 5);
    d.gap(ToServer, 10);
    d.ok(ToServer, &app_data(10), 6);
    d.finish(7);
    assert_eq!(d.out.len(), 1);
    assert_eq!(d.out[0].status, CallStatus::Ok);
}

#[test]
fn gap_in_encrypted_records_before_completion() {
    // TLS 1.3: the server's encrypted flight loses a segment before the
    // client finishes: the call is emitted when the client finishes.
    let mut d = Driver::new();
    d.ok(ToServer, &unhex(ECH_CH), 1);
    d.ok(ToClient, &unhex(ECH_SH), 2);
    d.ok(ToClient, &app_data(3000)[..1000], 3);
    d.gap(ToClient, 500);
    d.ok(ToClient, &[9; 700], 4);
    assert!(d.out.is_empty());
    d.ok(ToServer, &[&CCS[..], &app_data(40)].concat(), 5);
    let c = d.call();
    assert_eq!(c.status, CallStatus::Ok);
    assert_eq!(c.response_end_ts, Some(3));
}

#[test]
fn oversized_client_hello_is_too_large() {
    let cfg = SessionConfig { max_message_bytes: 512, ..SessionConfig::default() };
    let msg = client_hello_of(ECH_CH);
    assert!(msg.len() > 512);
    let mut d = Driver::with(&cfg);
    assert_eq!(d.send(ToServer, &reframe(&msg, &[100]), 10), Err(L7Error::TooLarge));
    d.finish(20);
    let c = d.call();
    assert_eq!(c.request_ts, Some(10));
    assert_eq!(c.status, CallStatus::Timeout);
    // Within one record the message is read in place: no copy, no limit.
    let mut d = Driver::with(&cfg);
    d.ok(ToServer, &unhex(ECH_CH), 10);
    d.finish(20);
    assert_eq!(attr(d.call(), "tls.sni"), Some("performance.radar.cloudflare.com"));
}

#[test]
fn plaintext_http_answer_is_unparsed() {
    let mut d = Driver::new();
    d.ok(ToServer, &unhex(CURL_CH), 10);
    let err = d.send(ToClient, b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", 20);
    assert_eq!(err, Err(L7Error::Malformed("tls_bad_record")));
    assert!(d.out.is_empty());
    d.finish(30);
    let c = d.call();
    assert_eq!(c.status, CallStatus::Unparsed);
    assert_eq!(c.response_first_ts, Some(20));
}

#[test]
fn duplicate_client_hello_keeps_the_first() {
    let first = client_hello_msg(0x0303, &[], &[0x1301], &[sni_ext("first.example")]);
    let second = client_hello_msg(0x0303, &[], &[0x1302], &[sni_ext("second.example")]);
    let mut d = Driver::new();
    d.ok(ToServer, &record(22, &first), 1);
    d.ok(ToServer, &record(22, &second), 2);
    d.ok(ToClient, &unhex(DNS2TCP_SH), 3);
    d.finish(4);
    let c = d.call();
    assert_eq!(c.request_domain.as_deref(), Some("first.example"));
    assert_eq!(c.request_ts, Some(1));
}

#[test]
fn several_messages_in_one_record_and_headers_across_records() {
    // ServerHello and ServerHelloDone in one record, then the same with
    // the ServerHelloDone header cut by a record boundary.
    let sh = server_hello_msg(0x0303, [1; 32], &[], 0x009c, &[]);
    let done = handshake_msg(14, &[]);
    let both = [sh.clone(), done.clone()].concat();
    for splits in [vec![], vec![sh.len() + 2], vec![sh.len() - 1, sh.len() + 1]] {
        let mut d = Driver::new();
        d.ok(ToServer, &unhex(CURL_CH), 1);
        let last = d.chunks(ToClient, &reframe(&both, &splits), &[9], 10);
        d.ok(ToServer, &[21, 3, 3, 0, 2, 2, 42], 100);
        let c = d.call();
        assert_eq!(c.response_end_ts, Some(last), "{splits:?}");
        assert_eq!(attr(c, "tls.cipher"), Some("TLS_RSA_WITH_AES_128_GCM_SHA256"));
        assert_eq!(c.response_exception.as_deref(), Some("bad_certificate"));
    }
}

#[test]
fn sslv2_client_hello_then_tls_server_hello() {
    let ch = unhex(SSLV2_CH);
    let mut d = Driver::new();
    d.chunks(ToServer, &ch, &[5], 10);
    d.ok(ToClient, &unhex(CURL_SH), 100);
    d.ok(ToServer, &[CCS.to_vec(), record(22, &[1; 40])].concat(), 200);
    d.ok(ToClient, &CCS, 300);
    let c = d.call();
    assert_eq!(c.request_ts, Some(10));
    assert_eq!(c.request_type.as_deref(), Some("ClientHello"));
    assert_eq!(attr(c, "tls.client_version"), Some("TLSv1.0"));
    assert_eq!(attr(c, "tls.sslv2_hello"), Some("true"));
    assert_eq!(attr(c, "tls.ja3"), None);
    assert_eq!(c.version.as_deref(), Some("TLSv1.2"));
    assert_eq!(c.request_bytes, (ch.len() + CCS.len() + 45) as u64);
    assert_eq!(c.status, CallStatus::Ok);
}

#[test]
fn udp_is_ignored() {
    let mut s = Session::new(&SessionConfig::default(), Transport::Udp);
    let mut out = Vec::new();
    let ch = unhex(CURL_CH);
    assert_eq!(s.parse(ToServer, &ch, 1, &mut out), Ok(ch.len()));
    s.finish(2, &mut out);
    assert!(out.is_empty());
}

/// However a real TLS 1.2 exchange is cut into segments, the call is the
/// same (times aside).
#[test]
fn random_splits_give_the_same_call() {
    let exchange = [
        (ToServer, unhex(JA4TLS_CH)),
        (ToClient, unhex(JA4TLS_SERVER_FLIGHT)),
        (ToServer, unhex(JA4TLS_CLIENT_FINISH)),
        (ToClient, unhex(JA4TLS_SERVER_FINISH)),
    ];
    let strip = |c: &Call| Call { request_ts: None, response_first_ts: None, response_end_ts: None, ..c.clone() };
    let mut reference = Driver::new();
    for (i, (dir, bytes)) in exchange.iter().enumerate() {
        reference.ok(*dir, bytes, i as i64);
    }
    let want = strip(reference.call());
    let mut rng = Rng(7);
    for _ in 0..300 {
        let mut d = Driver::new();
        let mut ts = 0;
        for (dir, bytes) in &exchange {
            let sizes: Vec<usize> = (0..8).map(|_| 1 + rng.below(200)).collect();
            ts = d.chunks(*dir, bytes, &sizes, ts + 1);
        }
        assert_eq!(strip(d.call()), want);
        assert_eq!(d.call().request_ts, Some(1));
    }
}

/// Random bytes, mutated real handshakes, random splits and gaps: never a
/// panic, at most one call, bounded carry.
#[test]
fn random_input_never_panics() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let real: Vec<(Direction, Vec<u8>)> = vec![
        (ToServer, unhex(JA4TLS_CH)),
        (ToClient, unhex(JA4TLS_SERVER_FLIGHT)),
        (ToServer, unhex(JA4TLS_CLIENT_FINISH)),
        (ToClient, unhex(JA4TLS_SERVER_FINISH)),
        (ToServer, unhex(ECH_CH)),
        (ToClient, unhex(ECH_SH)),
        (ToClient, app_data(700)),
        (ToServer, reframe(&client_hello_of(DUP_CH), &[3, 40])),
    ];
    for round in 0..3000 {
        let cfg = SessionConfig { max_message_bytes: 64 + rng.below(2000), ..SessionConfig::default() };
        let mut d = Driver::with(&cfg);
        let mut ts = 0;
        for _ in 0..1 + rng.below(8) {
            let (dir, mut bytes) = if round % 3 == 0 {
                let dir = if rng.below(2) == 0 { ToServer } else { ToClient };
                let n = rng.below(300);
                (dir, rng.bytes(n))
            } else {
                real[rng.below(real.len())].clone()
            };
            for _ in 0..rng.below(4) {
                if !bytes.is_empty() {
                    let i = rng.below(bytes.len());
                    bytes[i] = rng.next() as u8;
                }
            }
            let mut pos = 0;
            while pos < bytes.len() {
                let n = (1 + rng.below(64)).min(bytes.len() - pos);
                ts += 1;
                let _ = d.send(dir, &bytes[pos..pos + n], ts);
                pos += n;
                assert!(d.carry.iter().all(|c| c.len() <= parser::MAX_RECORD_LEN + 5 + 64));
                if rng.below(50) == 0 {
                    d.gap(dir, 10);
                }
                if rng.below(50) == 0 {
                    d.s.expire(ts - 5, &mut d.out);
                }
            }
        }
        d.finish(ts + 1);
        assert!(d.out.len() <= 1, "round {round}: {:#?}", d.out);
        for c in &d.out {
            assert_sorted(c);
        }
    }
}
