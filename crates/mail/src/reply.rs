//! The new part of a reply: quoted history ("On … wrote:", Outlook header blocks, `>` quotes,
//! our own "reply above this line" marker) and common signatures are cut off. The full text
//! is always kept beside it; this only decides what the conversation shows.

/// Our marker in outgoing mail; everything below it in a reply is our own history.
pub const REPLY_ABOVE_MARKER: &str = "##- Please type your reply above this line -##";

/// Openers of an attribution line ("On Monday, Ann wrote:") in the languages we meet.
const ATTRIBUTION_STARTS: &[&str] =
    &["on ", "am ", "le ", "el ", "op ", "il ", "w dniu ", "den ", "em ", "в ", "dne ", "på "];
/// Verbs of an attribution line; the line ends with ':' ("schrieb Ann <a@x>:" puts the name
/// after the verb in German).
const ATTRIBUTION_VERBS: &[&str] = &[
    "wrote",
    "writes",
    "schrieb",
    "a écrit",
    "escribió",
    "schreef",
    "ha scritto",
    "pisze",
    "napisał",
    "skrev",
    "escreveu",
    "написал",
    "пишет",
    "пише",
    "写道",
    "kirjoitti",
    "napsal",
    "yazdı",
    "작성",
    "a écrit",
];
const ORIGINAL_MESSAGE: &[&str] = &[
    "original message",
    "ursprüngliche nachricht",
    "original-nachricht",
    "message d'origine",
    "mensaje original",
    "oorspronkelijk bericht",
    "messaggio originale",
    "forwarded message",
    "begin forwarded message",
    "weitergeleitete nachricht",
];
const HEADER_FROM: &[&str] = &[
    "from:",
    "von:",
    "de:",
    "de :",
    "van:",
    "från:",
    "od:",
    "da:",
    "от:",
    "fra:",
    "від:",
    "kimden:",
    // Chinese, Japanese, Korean Outlook.
    "发件人:",
    "寄件者:",
    "差出人:",
    "送信者:",
    "보낸 사람:",
];
const HEADER_NEXT: &[&str] = &[
    "sent:",
    "date:",
    "to:",
    "subject:",
    "gesendet:",
    "datum:",
    "an:",
    "betreff:",
    "envoyé :",
    "envoyé:",
    "à :",
    "objet :",
    "enviado:",
    "para:",
    "asunto:",
    "verzonden:",
    "aan:",
    "onderwerp:",
    "skickat:",
    "till:",
    "ämne:",
    "wysłano:",
    "do:",
    "temat:",
    "inviato:",
    "a:",
    "oggetto:",
    "отправлено:",
    "кому:",
    "тема:",
    "дата:",
    "надіслано:",
    "cc:",
    "a :",
    "copie à :",
    "enviada em:",
    "assunto:",
    "data:",
    "gönderildi:",
    "gönderilme tarihi:",
    "kime:",
    "konu:",
    "tarih:",
    "odesláno:",
    "komu:",
    "předmět:",
    "发送时间:",
    "收件人:",
    "主题:",
    "抄送:",
    "日期:",
    "寄件日期:",
    "收件者:",
    "主旨:",
    "送信日時:",
    "宛先:",
    "件名:",
    "보낸 날짜:",
    "받는 사람:",
    "제목:",
    "참조:",
];
const MOBILE_SIGNATURES: &[&str] = &[
    "sent from my ",
    "sent from outlook",
    "get outlook for ",
    "sent from mail for windows",
    "sent from yahoo mail",
    "sent via ",
    "sent with ",
    "sent from windows mail",
    "sent from mailbox",
    "(sent from ",
    "<<sent by ",
    "envoyé depuis mon ",
    "von meinem mobilgerät gesendet",
    "diese nachricht wurde von meinem ",
    "sendt fra min ",
    "skickat från min ",
    "從我的 ",
    "verzonden met ",
    "from my iphone",
    "von meinem iphone gesendet",
    "von meinem ipad gesendet",
    "envoyé de mon ",
    "enviado desde mi ",
    "verzonden vanaf mijn ",
    "inviato da ",
];

/// The part of `text` a person wrote for this reply. Never empty when `text` has words: if
/// cutting would leave nothing (a reply that is only a quote), the text is kept whole.
pub fn visible_reply(text: &str) -> String {
    let normalised = text.replace("\r\n", "\n");
    let lines: Vec<&str> = normalised.lines().collect();
    // Bottom-posting: an attribution and its quote at the very top are history; the answer
    // follows them.
    let start = leading_quote_end(&lines).unwrap_or(0);
    let body = &lines[start..];
    let mut kept: Vec<&str> = match history_start(body) {
        Some(cut) if cut > 0 || !is_forward_marker(body[0]) => body[..cut].to_vec(),
        // A bare forward: what was forwarded is the message.
        Some(_) => without_forward_header(body),
        None => body.to_vec(),
    };
    strip_signature(&mut kept);
    let result = kept.iter().map(|l| l.trim_end()).collect::<Vec<_>>().join("\n").trim_matches('\n').to_owned();
    if result.trim().is_empty() { normalised.trim_matches('\n').to_owned() } else { result }
}

fn lower(line: &str) -> String {
    // Full-width colons (Chinese and Japanese clients) read as colons.
    line.trim().trim_matches('*').trim().to_lowercase().replace('：', ":")
}

fn starts_with_any(s: &str, list: &[&str]) -> bool {
    list.iter().any(|p| s.starts_with(p))
}

fn first_text(lines: &[&str]) -> Option<usize> {
    lines.iter().position(|l| !l.trim().is_empty())
}

fn is_quote(line: &str) -> bool {
    line.trim_start().starts_with('>')
}

fn is_separator(line: &str) -> bool {
    let t = line.trim();
    t.len() >= 5 && t.chars().all(|c| c == '_' || c == '-' || c == '=')
}

/// Where the answer starts when a message opens with "On … wrote:" and its quote.
fn leading_quote_end(lines: &[&str]) -> Option<usize> {
    let first = first_text(lines)?;
    let span = attribution_span(lines, first)?;
    let mut i = first + span;
    let mut seen_quote = false;
    while i < lines.len() && (lines[i].trim().is_empty() || is_quote(lines[i])) {
        seen_quote |= is_quote(lines[i]);
        i += 1;
    }
    (seen_quote && i < lines.len()).then_some(i)
}

/// Where quoted history starts, if anywhere.
fn history_start(lines: &[&str]) -> Option<usize> {
    for i in 0..lines.len() {
        let l = lower(lines[i]);
        if l.contains("reply above this line") {
            return Some(i);
        }
        if is_quote(lines[i]) {
            // A quote is history once nothing but quotes and blank lines follow.
            let rest = lines[i..].iter().take_while(|x| !matches!(x.trim_end(), "--" | "__"));
            if rest.clone().all(|x| x.trim().is_empty() || is_quote(x)) {
                return Some(back_over_attribution(lines, i));
            }
            continue;
        }
        if attribution_span(lines, i).is_some() {
            return Some(i);
        }
        // French web mail: "Message du 03/12/18 10:00" above the quoted headers.
        if l.starts_with("message du ")
            && (i + 1..lines.len()).find(|&k| !lines[k].trim().is_empty()).is_some_and(|k| is_header_block(lines, k))
        {
            return Some(separator_above(lines, i).unwrap_or(i));
        }
        let dashes = l.trim_matches(|c| c == '-' || c == ' ' || c == '_' || c == '=');
        if (l.starts_with("---") || l.starts_with("___")) && starts_with_any(dashes, ORIGINAL_MESSAGE)
            || is_forward_marker(lines[i])
        {
            return Some(i);
        }
        if is_header_block(lines, i) {
            // Include a separator line just above ("____", "-----").
            return Some(separator_above(lines, i).unwrap_or(i));
        }
    }
    None
}

/// A separator line ("____", "-----") just above line `i`, if any.
fn separator_above(lines: &[&str], i: usize) -> Option<usize> {
    (0..i).rev().find(|&j| !lines[j].trim().is_empty()).filter(|&j| is_separator(lines[j]))
}

/// The text of a new message without its signature (a `-- ` block, a phone footer, a
/// sign-off), as the conversation shows it; the full text is kept with the message.
pub fn without_signature(text: &str) -> String {
    let normalised = text.replace("\r\n", "\n");
    let mut lines: Vec<&str> = normalised.lines().collect();
    strip_signature(&mut lines);
    let result = lines.iter().map(|l| l.trim_end()).collect::<Vec<_>>().join("\n").trim_matches('\n').to_owned();
    if result.trim().is_empty() { normalised.trim_matches('\n').to_owned() } else { result }
}

fn is_forward_marker(line: &str) -> bool {
    let l = lower(line);
    let core = l.trim_matches(|c| c == '-' || c == ' ');
    starts_with_any(
        core,
        &["forwarded message", "begin forwarded message", "weitergeleitete nachricht", "message transféré"],
    )
}

/// A forward with nothing written above it: drop the marker and the forwarded headers.
fn without_forward_header<'a>(lines: &[&'a str]) -> Vec<&'a str> {
    let mut i = 1;
    while i < lines.len() && !lines[i].trim().is_empty() {
        i += 1;
    }
    lines[i.min(lines.len())..].to_vec()
}

/// If an attribution line ("On Monday, Ann <ann@x> wrote:", possibly wrapped over up to
/// three lines) starts at `i`, how many lines it takes.
fn attribution_span(lines: &[&str], i: usize) -> Option<usize> {
    let raw = lower(lines[i]);
    if raw.is_empty() || raw.starts_with('>') {
        return None;
    }
    let dashed = raw.starts_with("--");
    let first = raw.trim_matches(|c| c == '-' || c == ' ').to_owned();
    let looks_like_start = starts_with_any(&first, ATTRIBUTION_STARTS)
        || first.starts_with(|c: char| c.is_ascii_digit())
        || first.contains('@')
        || first.starts_with('"');
    let mut joined = first.clone();
    for extra in 0..3 {
        let text = joined.trim_end_matches(['-', ' ']);
        let dated_address = text.ends_with(">:") && text.contains('@') && text.chars().any(|c| c.is_ascii_digit());
        if is_attribution_text(text) || (dashed && ATTRIBUTION_VERBS.iter().any(|v| text.ends_with(v))) || dated_address
        {
            let next_is_quote = lines
                .get(i + extra + 1..)
                .and_then(|rest| rest.iter().find(|l| !l.trim().is_empty()))
                .is_some_and(|l| is_quote(l));
            return (looks_like_start || (extra == 0 && next_is_quote)).then_some(extra + 1);
        }
        if !looks_like_start {
            return None;
        }
        match lines.get(i + extra + 1) {
            Some(next) if !next.trim().is_empty() && joined.len() < 300 => {
                joined.push(' ');
                joined.push_str(&lower(next));
            }
            _ => return None,
        }
    }
    None
}

fn is_attribution_text(s: &str) -> bool {
    (s.ends_with(':') || s.ends_with('：')) && ATTRIBUTION_VERBS.iter().any(|v| s.contains(v))
}

/// Header lines of a quoted message (Outlook and web mail): a "From:" line with other header
/// lines right around it.
fn is_header_block(lines: &[&str], i: usize) -> bool {
    let l = lower(lines[i]);
    let is_header = |s: &str| starts_with_any(s, HEADER_FROM) || starts_with_any(s, HEADER_NEXT);
    if !is_header(&l) {
        return false;
    }
    let block: Vec<String> = lines[i..].iter().take(6).map(|x| lower(x)).take_while(|x| !x.is_empty()).collect();
    let headers = block.iter().filter(|x| is_header(x)).count();
    headers >= 2 && block.iter().any(|x| starts_with_any(x, HEADER_FROM))
}

fn back_over_attribution(lines: &[&str], quote: usize) -> usize {
    let mut j = quote;
    while j > 0 && lines[j - 1].trim().is_empty() {
        j -= 1;
    }
    if j > 0 && is_attribution_text(&lower(lines[j - 1])) { j - 1 } else { quote }
}

/// Drops a trailing signature: from a `-- ` delimiter, a "Sent from my phone" line, a
/// mailing-list footer rule or a "-Name" sign-off, when it is near the end.
fn strip_signature(lines: &mut Vec<&str>) {
    let trim_blank = |lines: &mut Vec<&str>| {
        // U+1427 is a tracking mark some web mail appends.
        while lines.last().is_some_and(|l| l.trim().trim_matches('\u{1427}').is_empty()) {
            lines.pop();
        }
    };
    trim_blank(lines);
    let len = lines.len();
    let tail = len.saturating_sub(15);
    if let Some(pos) = (tail..len).find(|&i| {
        let t = lines[i].trim_end();
        t == "--"
            || t == "__"
            || lines[i] == "-- "
            || (lines[i].trim().len() >= 20 && lines[i].trim().chars().all(|c| c == '_'))
    }) && pos > 0
    {
        lines.truncate(pos);
    }
    let len = lines.len();
    if let Some(pos) = (len.saturating_sub(40)..len).find(|&i| starts_with_any(&lower(lines[i]), MOBILE_SIGNATURES))
        && pos > 0
    {
        lines.truncate(pos);
    }
    trim_blank(lines);
    if let Some(last) = lines.last() {
        let t = last.trim();
        let sign_off =
            t.starts_with('-') && !t.starts_with("--") && t.len() < 30 && t[1..].starts_with(char::is_alphabetic);
        if sign_off && lines.len() > 1 {
            lines.pop();
            trim_blank(lines);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_attributed_quotes() {
        assert_eq!(
            visible_reply("Thanks, fixed.\n\nOn Mon, Apr 2, 2012 at 6:26 PM, Ann <a@x.org> wrote:\n> Hi\n"),
            "Thanks, fixed."
        );
        assert_eq!(visible_reply("Danke!\n\nAm 02.04.2012 um 18:26 schrieb Ann <a@x.org>:\n> Hi"), "Danke!");
        assert_eq!(
            visible_reply("Works now.\n\nOn Mon, Apr 2, 2012 at 6:26 PM, Megan One <xxx@gmail.com>\nwrote:\n\n> Hi"),
            "Works now."
        );
    }

    #[test]
    fn cuts_outlook_blocks_and_our_marker() {
        let outlook = "Yes please.\n\n________________________________\nFrom: Desk <help@x.org>\nSent: Monday\nTo: Ann\nSubject: [#1001] x\n\nOld";
        assert_eq!(visible_reply(outlook), "Yes please.");
        let ours = format!("Done.\n\n{REPLY_ABOVE_MARKER}\n\nYour request #1001 ...");
        assert_eq!(visible_reply(&ours), "Done.");
        assert_eq!(visible_reply("Hi\n-----Original Message-----\nFrom: x"), "Hi");
    }

    #[test]
    fn cuts_signatures_and_phone_footers() {
        assert_eq!(visible_reply("Restarted it.\n\n-- \nAnn Example\nIT, Room 4"), "Restarted it.");
        assert_eq!(visible_reply("Ok\n\nSent from my iPhone"), "Ok");
    }

    #[test]
    fn quote_headers_in_many_languages_and_clients() {
        let cases: &[(&str, &str)] = &[
            // French web mail: a separator, "Message du …", the quoted headers.
            (
                "C'est réparé.\n\n========================================\nMessage du 03/12/18 10:00\nDe : ann@x.fr\nA : help@desk.fr\nCopie à : \nObjet : Imprimante\n\nElle bloque.",
                "C'est réparé.",
            ),
            ("Merci !\n\nLe lun. 3 déc. 2018 à 10:00, Ann <ann@x.fr> a écrit :\n> Elle bloque.", "Merci !"),
            // Chinese Outlook, with full-width colons.
            (
                "已解决。\n\n发件人： Ann <ann@x.cn>\n发送时间： 2023年2月3日 10:00\n收件人： help@desk.cn\n主题： 打印机\n\n打印机坏了",
                "已解决。",
            ),
            ("好的\n\nAnn <ann@x.cn> 于2023年2月3日周五 10:00写道：\n> 打印机坏了", "好的"),
            // Japanese and Korean Outlook and Gmail.
            (
                "了解です。\n\n差出人: Ann <ann@x.jp>\n送信日時: 2023年2月3日 10:00\n宛先: help@desk.jp\n件名: プリンター\n\n壊れました",
                "了解です。",
            ),
            ("ありがとう\n\n2023年2月3日(金) 10:00 Ann <ann@x.jp>:\n> 壊れました", "ありがとう"),
            (
                "감사합니다\n\n보낸 사람: Ann <ann@x.kr>\n보낸 날짜: 2023년 2월 3일\n받는 사람: help@desk.kr\n제목: 프린터\n\n고장",
                "감사합니다",
            ),
            ("확인했습니다\n\n2023년 2월 3일 (금) 오전 10:00, Ann <ann@x.kr>님이 작성:\n> 고장", "확인했습니다"),
            // Russian and Ukrainian.
            ("Спасибо.\n\nпт, 3 февр. 2023 г. в 10:00, Иван <ivan@x.ru>:\n> Принтер сломан", "Спасибо."),
            ("Дякую.\n\nпт, 3 лют. 2023 р. о 10:00 Іван <ivan@x.ua> пише:\n> Принтер", "Дякую."),
            (
                "Готово.\n\nВід: Іван <ivan@x.ua>\nНадіслано: 3 лютого 2023 р.\nКому: help@desk.ua\nТема: Принтер\n\nЗламався",
                "Готово.",
            ),
            // Spanish, Portuguese, Turkish, Czech.
            ("Gracias.\n\nEl vie, 3 feb 2023 a las 10:00, Ann (<ann@x.es>) escribió:\n> Roto", "Gracias."),
            ("Obrigado.\n\nEm sex., 3 de fev. de 2023 às 10:00, Ann <ann@x.br> escreveu:\n> Quebrou", "Obrigado."),
            (
                "Obrigado.\n\nDe: Ann <ann@x.br>\nEnviada em: sexta-feira, 3 de fevereiro de 2023 10:00\nPara: help@desk.br\nAssunto: Impressora\n\nQuebrou",
                "Obrigado.",
            ),
            (
                "Teşekkürler.\n\nKimden: Ann <ann@x.tr>\nGönderildi: 3 Şubat 2023 Cuma 10:00\nKime: help@desk.tr\nKonu: Yazıcı\n\nBozuk",
                "Teşekkürler.",
            ),
            ("Teşekkürler.\n\nAnn <ann@x.tr>, 3 Şub 2023 Cum, 10:00 tarihinde şunu yazdı:\n> Bozuk", "Teşekkürler."),
            (
                "Díky.\n\nOd: Ann <ann@x.cz>\nOdesláno: pátek 3. února 2023 10:00\nKomu: help@desk.cz\nPředmět: Tiskárna\n\nRozbitá",
                "Díky.",
            ),
            ("Díky.\n\npá 3. 2. 2023 v 10:00 odesílatel Ann <ann@x.cz> napsal:\n> Rozbitá", "Díky."),
        ];
        for (text, expected) in cases {
            assert_eq!(visible_reply(text), *expected, "{text}");
        }
    }

    #[test]
    fn new_messages_lose_their_signature_too() {
        assert_eq!(without_signature("The printer jams.\n\n-- \nAnn Example\nIT, Room 4"), "The printer jams.");
        assert_eq!(without_signature("VPN is down\n\nSent from my iPhone"), "VPN is down");
        assert_eq!(without_signature("Only words"), "Only words");
    }

    #[test]
    fn interleaved_answers_and_quote_only_replies_are_kept() {
        let inline = "> Is it plugged in?\nYes.\n> Which model?\nHP 4000";
        assert_eq!(visible_reply(inline), inline);
        assert_eq!(visible_reply("> only a quote"), "> only a quote");
    }
}
