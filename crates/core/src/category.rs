//! The category tree.

use crate::error::DomainError;
use crate::ids::CategoryId;

/// Checks that giving `category` the parent `new_parent` keeps the tree a tree: no category may
/// become its own ancestor. `parent_of` answers each category's current parent.
pub fn check_reparent(
    category: CategoryId,
    new_parent: Option<CategoryId>,
    parent_of: impl Fn(CategoryId) -> Option<CategoryId>,
) -> Result<(), DomainError> {
    let mut cursor = new_parent;
    let mut steps = 0;
    while let Some(c) = cursor {
        if c == category {
            return Err(DomainError::invalid(
                "parent_id",
                "a category cannot be moved under itself or its descendants",
            ));
        }
        steps += 1;
        if steps > 64 {
            return Err(DomainError::invalid("parent_id", "the category tree is at most 64 levels deep"));
        }
        cursor = parent_of(c);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_category_becomes_its_own_ancestor() {
        let (a, b, c) = (CategoryId::generate(), CategoryId::generate(), CategoryId::generate());
        // a ← b ← c (c's parent is b, b's parent is a)
        let parent_of = |x: CategoryId| {
            if x == c {
                Some(b)
            } else if x == b {
                Some(a)
            } else {
                None
            }
        };
        assert!(check_reparent(a, Some(c), parent_of).is_err(), "a under its grandchild");
        assert!(check_reparent(a, Some(a), parent_of).is_err(), "a under itself");
        assert!(check_reparent(c, Some(a), parent_of).is_ok());
        assert!(check_reparent(b, None, parent_of).is_ok());
    }
}
