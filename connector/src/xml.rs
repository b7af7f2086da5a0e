//! A small XML tree for AWS Query-protocol responses.
//!
//! Responses are a few hundred KiB at most (one page), so a tree is simpler to navigate
//! than a streaming state machine and costs little. Namespaces are dropped: AWS uses one
//! default namespace per document.

use quick_xml::events::Event;
use quick_xml::Reader;

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Element {
    pub name: String,
    pub children: Vec<Element>,
    /// Concatenated, unescaped character data directly inside this element.
    pub text: String,
}

impl Element {
    /// The first child with this local name.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Text of the first child with this name, if present.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }

    /// Follows a path of child names.
    pub fn path(&self, names: &[&str]) -> Option<&Element> {
        names.iter().try_fold(self, |el, n| el.child(n))
    }

    /// The `<member>` items of a wrapped Query-protocol list child.
    pub fn members<'a>(&'a self, list: &str) -> impl Iterator<Item = &'a Element> + 'a {
        self.child(list)
            .into_iter()
            .flat_map(|l| l.children.iter().filter(|c| c.name == "member"))
    }

    /// Depth-first search for the first element with this name, self included.
    pub fn find(&self, name: &str) -> Option<&Element> {
        if self.name == name {
            return Some(self);
        }
        self.children.iter().find_map(|c| c.find(name))
    }
}

/// AWS's answers nest about ten deep; far deeper is an attack on the tree's recursive
/// walks and drops, not data.
const MAX_DEPTH: usize = 100;

/// Parses a document into its root element.
pub fn parse(doc: &str) -> Result<Element, String> {
    let mut reader = Reader::from_str(doc);
    let mut stack: Vec<Element> = vec![Element::default()];
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("malformed XML at byte {}: {e}", reader.buffer_position()))?;
        match event {
            Event::Start(_) if stack.len() > MAX_DEPTH => {
                return Err(format!(
                    "malformed XML: elements nested deeper than {MAX_DEPTH}"
                ))
            }
            Event::Start(s) => stack.push(Element {
                name: s.local_name().as_ref().to_string(),
                ..Default::default()
            }),
            Event::Empty(s) => {
                let el = Element {
                    name: s.local_name().as_ref().to_string(),
                    ..Default::default()
                };
                top(&mut stack)?.children.push(el);
            }
            Event::End(_) => {
                if stack.len() < 2 {
                    return Err("malformed XML: unbalanced end tag".into());
                }
                let done = stack.pop().expect("checked length");
                top(&mut stack)?.children.push(done);
            }
            Event::Text(t) => top(&mut stack)?.text.push_str(&t.xml10_content()),
            Event::CData(c) => top(&mut stack)?.text.push_str(&c.into_inner()),
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(ch)) => ch.to_string(),
                    Ok(None) => quick_xml::escape::resolve_predefined_entity(&r)
                        .ok_or_else(|| format!("malformed XML: unknown entity &{};", &*r))?
                        .to_string(),
                    Err(e) => return Err(format!("malformed XML: {e}")),
                };
                top(&mut stack)?.text.push_str(&resolved);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if stack.len() != 1 {
        return Err("malformed XML: document ended inside an element".into());
    }
    let mut doc = stack.pop().expect("one element");
    match doc.children.len() {
        1 => Ok(doc.children.pop().expect("one child")),
        0 => Err("malformed XML: no root element".into()),
        _ => Err("malformed XML: several root elements".into()),
    }
}

fn top(stack: &mut [Element]) -> Result<&mut Element, String> {
    stack
        .last_mut()
        .ok_or_else(|| "malformed XML: unbalanced tags".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nested_lists_and_entities() {
        let doc = r#"<?xml version="1.0"?>
<ListUsersResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">
  <ListUsersResult>
    <Users>
      <member><UserName>dave &amp; co</UserName><Path>/</Path></member>
      <member><UserName>a&#64;b</UserName><Path/></member>
    </Users>
    <IsTruncated>false</IsTruncated>
  </ListUsersResult>
</ListUsersResponse>"#;
        let root = parse(doc).unwrap();
        assert_eq!(root.name, "ListUsersResponse");
        let result = root.child("ListUsersResult").unwrap();
        let names: Vec<_> = result
            .members("Users")
            .map(|m| m.child_text("UserName").unwrap().to_string())
            .collect();
        assert_eq!(names, ["dave & co", "a@b"]);
        assert_eq!(result.child_text("IsTruncated"), Some("false"));
        assert_eq!(root.find("Path").unwrap().text, "/");
    }

    #[test]
    fn rejects_truncated_documents() {
        let err = parse("<A><B>text</B>").unwrap_err();
        assert!(err.contains("malformed XML"), "{err}");
        assert!(parse("").is_err());
        assert!(parse("<A></B>").is_err());
    }
}
